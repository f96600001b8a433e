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
#include "host/core/kill_point.hpp"
#include "host/core/nvtx.hpp"
#include "host/core/safetensors.hpp"
#include "host/train/checkpoint_files.hpp"
#include "host/train/policy_file.hpp"
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

void check_finite(const std::vector<float>& values, const fs::path& file, const char* tensor) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    MBMPO_CHECK_INPUT(std::isfinite(values[i]), file.string(), ": ", tensor, "[", i, "] is ", values[i],
                      " (a NaN or infinite parameter)");
  }
}

// The configuration a checkpoint was written with, checked as a configuration given by hand is.
TrainConfig checkpoint_config(const nlohmann::json& state, const fs::path& dir) {
  try {
    TrainConfig config = config_from_json(state.at("config"));
    validate(config);
    return config;
  } catch (const InputError& e) {
    throw InputError((dir / "state.json").string() + ": its configuration is refused: " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw InputError((dir / "state.json").string() + ": its configuration is malformed (" + e.what() + ")");
  }
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
  kill_point("checkpoint-policy");
  models.save((partial / "models.safetensors").string(), true);
  kill_point("checkpoint-models");
  dataset.save((partial / "dataset.bin").string());
  kill_point("checkpoint-dataset");
  const nlohmann::json state = {{"format", "mbmpo-checkpoint"},
                                {"iterations_done", iterations_done},
                                {"real_steps", real_steps},
                                {"episodes_started", episodes_started},
                                {"numeric_path", numeric_path(context)},
                                {"config", config_to_json(config)}};
  // state.json last: it holds the checksums of the files written before it.
  write_file_atomically((partial / "state.json").string(), sealed_state(partial, state));
  // The directory becomes visible under its final name only when complete; "latest" moves last.
  const fs::path final_dir = checkpoints() / name;
  fs::remove_all(final_dir);
  fs::rename(partial, final_dir);
  kill_point("checkpoint-renamed");
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
  nlohmann::json state;
  std::vector<float> theta_host, adapted_host;
  Dataset loaded(task.obs_dim, task.act_dim, 2);
  const fs::path dir = read_first_sound_checkpoint(checkpoints(), "cannot resume", [&](const fs::path& candidate) {
    state = verified_state(candidate);
    checkpoint_config(state, candidate);
    const nlohmann::json saved = state.at("config"), current = config_to_json(config);
    for (const std::string& key : shape_keys()) {
      if (!saved.contains(key) || saved.at(key) != current.at(key)) {
        throw CheckpointMismatch("cannot resume: the checkpoint " + candidate.string() + " has " + key + " = " +
                                 (saved.contains(key) ? saved.at(key).dump() : "(missing)") +
                                 " but the configuration says " + current.at(key).dump());
      }
    }
    const fs::path policy_path = candidate / "policy.safetensors";
    const Safetensors policy = Safetensors::load(policy_path.string());
    theta_host = policy.f32("theta", {layout.parameter_count()});
    adapted_host = policy.f32("adapted", adapted.shape());
    check_finite(theta_host, policy_path, "theta");
    check_finite(adapted_host, policy_path, "adapted");
    loaded = Dataset::load((candidate / "dataset.bin").string());
    MBMPO_CHECK_INPUT(loaded.obs_dim() == task.obs_dim && loaded.act_dim() == task.act_dim &&
                          loaded.capacity() == std::size_t(config.dataset_capacity),
                      (candidate / "dataset.bin").string(), " does not match the task or capacity");
    MBMPO_CHECK_INPUT(loaded.total_added() <= std::uint64_t(state.at("real_steps").get<std::int64_t>()),
                      (candidate / "state.json").string(), ": real_steps is ", state.at("real_steps").dump(),
                      " but the dataset holds ", loaded.total_added(), " transitions");
    // Last: the ensemble is replaced only when its file reads and checks, and nothing after can fail.
    models.load((candidate / "models.safetensors").string());
  });
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

void Trainer::State::save_final_files() {
  save_policy_file((run_dir / "policy.safetensors").string(), config, theta.to_host(&context));
  // The models the last meta-step used, without their optimiser state: what a user loads.
  models.save((run_dir / "models.safetensors").string(), false);
}

SavedPolicy load_saved_policy(const std::string& path) {
  const fs::path p(path);
  MBMPO_CHECK_INPUT(fs::exists(p), "no such run directory, checkpoint or policy file: ", path);
  SavedPolicy saved;
  const auto read_checkpoint = [&](const fs::path& dir) {
    const nlohmann::json state = verified_state(dir);
    saved.config = checkpoint_config(state, dir);
    const fs::path policy_path = dir / "policy.safetensors";
    saved.theta = policy_file_theta(Safetensors::load(policy_path.string()), policy_path.string(), saved.config);
    saved.has_models = true;
    saved.checkpoint_dir = dir.string();
    saved.models_path = (dir / "models.safetensors").string();
  };
  if (fs::is_directory(p) && fs::is_directory(p / "checkpoints")) {  // a run directory
    read_first_sound_checkpoint(p / "checkpoints", "cannot evaluate " + path, read_checkpoint);
    return saved;
  }
  if (fs::is_regular_file(p) && p.filename() == "latest") {  // checkpoints/latest: the newest checkpoint
    read_first_sound_checkpoint(p.parent_path(), "cannot evaluate " + path, read_checkpoint);
    return saved;
  }
  if (fs::is_directory(p)) {  // a checkpoint directory, taken as it is
    MBMPO_CHECK_INPUT(fs::exists(p / "state.json"), path,
                      " is neither a run directory with checkpoints nor a checkpoint (no state.json)");
    read_checkpoint(p);
    return saved;
  }
  const Safetensors policy = Safetensors::load(p.string());
  saved.config = policy_file_config(policy, path);
  saved.theta = policy_file_theta(policy, path, saved.config);
  return saved;
}

}  // namespace mbmpo
