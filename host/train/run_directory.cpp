#include "host/train/run_directory.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "host/core/atomic_file.hpp"
#include "host/core/backend.hpp"
#include "host/core/cpu_isa.hpp"
#include "host/core/error.hpp"
#include "host/core/nvtx.hpp"
#include "host/core/safetensors.hpp"
#include "host/train/train_fields.hpp"
#include "host/train/trainer_state.hpp"

namespace fs = std::filesystem;

namespace mbmpo {
namespace {

// The settings a checkpoint's contents depend on: a resumed run must agree on every one.
std::vector<std::string> shape_keys() {
  std::vector<std::string> keys;
  for (const TrainField& field : train_fields()) {
    if (field.checkpoint_shape) keys.push_back(field.key);
  }
  return keys;
}

std::string checkpoint_name(int iterations_done) {
  std::ostringstream name;
  name << "iter-" << std::setw(6) << std::setfill('0') << iterations_done;
  return name.str();
}

std::string csv_value(const nlohmann::ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_number_float()) {
    if (!std::isfinite(v.get<double>())) return "";  // as in progress.jsonl, where it is null
    std::ostringstream out;
    out << std::setprecision(9) << v.get<double>();
    return out.str();
  }
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  return v.dump();
}


// Where a run's numbers were computed: the backend and, on the CPU, the instruction set. Results
// are bit-identical only on one path.
nlohmann::json numeric_path(Context& context) {
  nlohmann::json path = {{"backend", to_string(context.backend())}};
  if (context.backend() == Backend::cpu) path["cpu_arch"] = cpu_arch_built();
  return path;
}

}  // namespace

bool holds_checkpoint(const std::string& run_dir) {
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  if (fs::exists(checkpoints / "latest")) return true;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(checkpoints, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("iter-", 0) == 0 && name.find(".partial") == std::string::npos) return true;
  }
  return false;
}

bool holds_run(const std::string& run_dir) {
  if (holds_checkpoint(run_dir)) return true;
  // The first iteration's row is written just before its checkpoint; a later row means the
  // directory had checkpoints (deleted since): refuse rather than overwrite that history.
  const fs::path jsonl = fs::path(run_dir) / "progress.jsonl";
  if (!fs::exists(jsonl)) return false;
  std::istringstream lines(read_file(jsonl.string()));
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
    if (!row.is_object() || !row.contains("iteration") || row["iteration"] != 0) return true;
  }
  return false;
}

void check_run_dir_path(const std::string& run_dir) {
  MBMPO_CHECK_INPUT(!run_dir.empty(), "no run directory");
  // Each folder on the way must be a folder (or not exist yet).
  for (fs::path p = fs::path(run_dir); !p.empty(); p = p.parent_path()) {
    MBMPO_CHECK_INPUT(!fs::exists(p) || fs::is_directory(p), "run directory ", run_dir, ": ", p.string(),
                      " is a file, not a directory");
    if (p == p.parent_path()) break;
  }
}

void check_fresh_run_dir(const std::string& run_dir) {
  check_run_dir_path(run_dir);
  MBMPO_CHECK_INPUT(!holds_run(run_dir), "run directory ", run_dir,
                    " already holds a run: pass --resume to continue it, or choose another "
                    "--run-dir (nothing is overwritten)");
}

void Trainer::State::save_checkpoint() {
  MBMPO_NVTX_RANGE("checkpoint");
  const std::string name = checkpoint_name(iterations_done);
  const fs::path partial = checkpoints() / (name + ".partial");
  fs::remove_all(partial);
  fs::create_directories(partial);
  Safetensors policy;
  policy.put_f32("theta", {layout.parameter_count()}, theta.to_host(&context));
  policy.put_f32("adapted", adapted.shape(), adapted.to_host(&context));
  policy.set_metadata("env", config.env);
  policy.save((partial / "policy.safetensors").string());
  models.save((partial / "models.safetensors").string(), true);
  dataset.save((partial / "dataset.bin").string());
  const nlohmann::json state = {{"format", "mbmpo-checkpoint"},
                                {"version", 1},
                                {"iterations_done", iterations_done},
                                {"real_steps", real_steps},
                                {"episodes_started", episodes_started},
                                {"numeric_path", numeric_path(context)},
                                {"config", config_to_json(config)}};
  write_file_atomically((partial / "state.json").string(), state.dump(2) + "\n");
  // The directory becomes visible under its final name only when complete; "latest" moves last.
  const fs::path final_dir = checkpoints() / name;
  fs::remove_all(final_dir);
  fs::rename(partial, final_dir);
  write_file_atomically((checkpoints() / "latest").string(), name + "\n");
  for (const auto& entry : fs::directory_iterator(checkpoints())) {  // keep the newest two
    const std::string other = entry.path().filename().string();
    if (entry.is_directory() && other.rfind("iter-", 0) == 0 && other != name &&
        other != checkpoint_name(iterations_done - 1)) {
      fs::remove_all(entry.path());
    }
  }
}

void Trainer::State::load_checkpoint() {
  const fs::path latest = checkpoints() / "latest";
  MBMPO_CHECK_INPUT(fs::exists(latest), "cannot resume: ", run_dir.string(),
                    " has no checkpoint (checkpoints/latest is missing)");
  std::string name = read_file(latest.string());
  name.erase(std::remove_if(name.begin(), name.end(), ::isspace), name.end());
  const fs::path dir = checkpoints() / name;
  MBMPO_CHECK_INPUT(!name.empty() && fs::is_directory(dir), "cannot resume: checkpoint '", name,
                    "' named by ", latest.string(), " does not exist");
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_file((dir / "state.json").string()));
  } catch (const nlohmann::json::exception& e) {
    throw InputError("cannot resume: " + (dir / "state.json").string() + " is not valid JSON (" + e.what() + ")");
  }
  MBMPO_CHECK_INPUT(state.value("format", "") == "mbmpo-checkpoint" && state.value("version", 0) == 1,
                    "cannot resume: ", (dir / "state.json").string(), " is not an mbmpo checkpoint (version 1)");
  const nlohmann::json saved = state.at("config"), current = config_to_json(config);
  for (const std::string& key : shape_keys()) {
    MBMPO_CHECK_INPUT(saved.contains(key) && saved.at(key) == current.at(key), "cannot resume: the checkpoint has ",
                      key, " = ", saved.contains(key) ? saved.at(key).dump() : "(missing)",
                      " but the configuration says ", current.at(key).dump());
  }
  const Safetensors policy = Safetensors::load((dir / "policy.safetensors").string());
  std::vector<float> theta_host = policy.f32("theta", {layout.parameter_count()});
  std::vector<float> adapted_host = policy.f32("adapted", adapted.shape());
  models.load((dir / "models.safetensors").string());
  Dataset loaded = Dataset::load((dir / "dataset.bin").string());
  MBMPO_CHECK_INPUT(loaded.obs_dim() == task.obs_dim && loaded.act_dim() == task.act_dim &&
                        loaded.capacity() == std::size_t(config.dataset_capacity),
                    "cannot resume: ", (dir / "dataset.bin").string(), " does not match the task or capacity");
  // Nothing changes before every file has been read and checked.
  dataset = std::move(loaded);
  theta.copy_from_host(theta_host, &context);
  adapted.copy_from_host(adapted_host, &context);
  iterations_done = state.at("iterations_done").get<int>();
  real_steps = state.at("real_steps").get<std::int64_t>();
  episodes_started = state.at("episodes_started").get<std::uint64_t>();
  // Another backend or instruction set rounds differently: the run goes on, but its last bits may
  // differ from an uninterrupted run's.
  const nlohmann::json here = numeric_path(context);
  if (state.contains("numeric_path") && state.at("numeric_path") != here) {
    std::fprintf(stderr,
                 "mbmpo: warning: %s was written on %s, this run computes on %s: the results from here on may "
                 "differ in their last bits from an uninterrupted run's\n",
                 dir.string().c_str(), state.at("numeric_path").dump().c_str(), here.dump().c_str());
  }
  // Progress rows of iterations after the checkpoint are redone.
  const fs::path jsonl = run_dir / "progress.jsonl";
  if (fs::exists(jsonl)) {
    std::istringstream lines(read_file(jsonl.string()));
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      try {
        nlohmann::ordered_json row = nlohmann::ordered_json::parse(line);
        if (row.at("iteration").get<int>() < iterations_done) rows.push_back(std::move(row));
      } catch (const nlohmann::json::exception&) {
        break;  // a row cut short by the interruption
      }
    }
  }
}

void Trainer::State::write_progress() {
  std::string jsonl;
  for (const auto& row : rows) jsonl += row.dump() + "\n";
  write_file_atomically((run_dir / "progress.jsonl").string(), jsonl);
  std::string csv;
  if (!rows.empty()) {
    bool first = true;
    for (const auto& item : rows.front().items()) {
      csv += (first ? "" : ",") + item.key();
      first = false;
    }
    csv += "\n";
    for (const auto& row : rows) {
      first = true;
      for (const auto& item : rows.front().items()) {
        csv += (first ? "" : ",") + csv_value(row.value(item.key(), nlohmann::ordered_json()));
        first = false;
      }
      csv += "\n";
    }
  }
  write_file_atomically((run_dir / "progress.csv").string(), csv);
}

void Trainer::State::save_final_policy() {
  Safetensors final_policy;
  final_policy.put_f32("theta", {layout.parameter_count()}, theta.to_host(&context));
  final_policy.set_metadata("env", config.env);
  final_policy.set_metadata("config", config_to_json(config).dump());
  final_policy.save((run_dir / "policy.safetensors").string());
}

SavedPolicy load_saved_policy(const std::string& path) {
  fs::path p(path);
  MBMPO_CHECK_INPUT(fs::exists(p), "no such run directory, checkpoint or policy file: ", path);
  if (fs::is_directory(p) && fs::exists(p / "checkpoints" / "latest")) {
    std::string name = read_file((p / "checkpoints" / "latest").string());
    name.erase(std::remove_if(name.begin(), name.end(), ::isspace), name.end());
    p = p / "checkpoints" / name;
    MBMPO_CHECK_INPUT(fs::is_directory(p), "checkpoint ", p.string(), " named by checkpoints/latest does not exist");
  }
  SavedPolicy saved;
  if (fs::is_directory(p)) {
    MBMPO_CHECK_INPUT(fs::exists(p / "state.json"), path, " is neither a run directory nor a checkpoint (no state.json)");
    nlohmann::json state;
    try {
      state = nlohmann::json::parse(read_file((p / "state.json").string()));
      saved.config = config_from_json(state.at("config"));
    } catch (const nlohmann::json::exception& e) {
      throw InputError((p / "state.json").string() + " is not a valid checkpoint state (" + e.what() + ")");
    }
    const Safetensors policy = Safetensors::load((p / "policy.safetensors").string());
    saved.theta = policy.f32("theta", {policy_layout(saved.config).parameter_count()});
    saved.has_models = true;
    saved.models_path = (p / "models.safetensors").string();
    return saved;
  }
  const Safetensors policy = Safetensors::load(p.string());
  try {
    saved.config = config_from_json(nlohmann::json::parse(policy.metadata("config")));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": the policy file's config metadata is not valid JSON (" + e.what() + ")");
  }
  validate(saved.config);
  saved.theta = policy.f32("theta", {policy_layout(saved.config).parameter_count()});
  return saved;
}

}  // namespace mbmpo
