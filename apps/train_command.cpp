// `mbmpo train`: the MB-MPO trainer; `mbmpo eval`: real-environment returns of a saved policy.
// Every hyperparameter is a flag and a config.toml key of the same name (CLI11 reads and writes
// the TOML); `--preset smoke` changes the defaults, so explicit flags and config keys still win.
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <variant>

#include "apps/commands.hpp"
#include "apps/config_file.hpp"
#include "apps/path_flags.hpp"
#include "apps/strict_value.hpp"
#include "host/core/atomic_file.hpp"
#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/envs/task.hpp"
#include "host/train/evaluation.hpp"
#include "host/train/run_directory.hpp"
#include "host/train/seed_group.hpp"
#include "host/train/train_fields.hpp"
#include "host/train/trainer.hpp"

namespace fs = std::filesystem;

namespace mbmpo::app {
namespace {

struct TrainOptions {
  TrainConfig config;
  std::string run_dir;
  bool resume = false;
  std::string preset;
  bool quiet = false;
  bool json = false;
  std::map<std::string, std::string> sizes;  // "512,512" per list-of-sizes field, parsed into the config
  std::string seeds;         // --seeds: several seeds in one process (host/train/seed_group.hpp)
  bool seed_given = false;   // --seed on the command line (it cannot go with --seeds)
  bool seeds_given = false;  // --seeds on the command line, even with an empty list
};

// The value following `flag` in argv ("--flag value" or "--flag=value"), or "".
std::string scan_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == flag && i + 1 < argc) return argv[i + 1];
    if (arg.rfind(flag + "=", 0) == 0) return arg.substr(flag.size() + 1);
  }
  return "";
}
bool has_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == flag) return true;
  }
  return false;
}

std::string format_duration(double seconds) {
  std::ostringstream out;
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const long s = long(seconds + 0.5);
  if (s >= 3600) out << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
  else if (s >= 60) out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else out << s << "s";
  return out.str();
}

std::string progress_line(const nlohmann::ordered_json& row, int iterations, double seconds_per_iteration) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  const int done = row["iteration"].get<int>() + 1;
  out << "iter " << done << "/" << iterations << "  steps " << row["real_steps"].get<std::int64_t>();
  auto number = [](const nlohmann::ordered_json& v) { return v.is_number() ? v.get<double>() : std::nan(""); };
  out << "  return pre " << number(row["return_pre_mean"]) << " ± " << number(row["return_pre_std"]);
  out << " post " << number(row["return_post_mean"]);
  out << "  imagined " << number(row["imagined_return_pre"]) << " -> " << number(row["imagined_return_post"]);
  double loss = 0;
  int models = 0;
  for (const auto& item : row.items()) {
    if (item.key().rfind("model_val_loss_", 0) == 0) {
      loss += number(item.value());
      ++models;
    }
  }
  out << std::setprecision(4) << "  model val " << (models ? loss / models : std::nan(""));
  out << "  kl " << number(row["meta_kl"]) << std::setprecision(2) << " accepted " << number(row["step_accepted_fraction"]);
  out << std::setprecision(1) << "  " << seconds_per_iteration << " s/it  ETA "
      << format_duration(seconds_per_iteration * (iterations - done));
  return out.str();
}

// mean ± std of a column over the rows that have it.
std::string mean_std(const std::vector<nlohmann::ordered_json>& rows, const char* column) {
  ReturnStats values;
  for (const auto& row : rows) {
    if (row.is_object() && row[column].is_number()) values.returns.push_back(row[column].get<double>());
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << values.mean() << " ± " << values.std();
  return out.str();
}

int run_seed_group(TrainOptions& options, Backend backend) {
  const TrainConfig& config = options.config;
  const std::vector<std::uint64_t> seeds = parse_seed_list(options.seeds);
  SeedGroup group(backend, config, seeds, options.run_dir, options.resume);
  write_seed_group_configs(options.run_dir, config, seeds, options.seeds);
  if (!options.quiet && !options.json) {
    std::cerr << "mbmpo train: " << config.env << " on " << to_string(backend) << ", " << seeds.size()
              << " seeds in one process, run directory " << options.run_dir
              << (group.iterations_done() > 0 ? " (resumed at iteration " + std::to_string(group.iterations_done()) + ")" : "")
              << "\n";
  }
  const auto start = std::chrono::steady_clock::now();
  const int first = group.iterations_done();
  group.run([&](const std::vector<nlohmann::ordered_json>& rows) {
    if (options.json) {
      for (std::size_t i = 0; i < rows.size(); ++i) {
        if (!rows[i].is_object()) continue;
        nlohmann::ordered_json row = {{"seed", seeds[i]}};
        row.update(rows[i]);
        std::cout << row.dump() << std::endl;
      }
      return;
    }
    if (options.quiet) return;
    int iteration = 0;
    for (const auto& row : rows) {
      if (row.is_object()) iteration = std::max(iteration, row["iteration"].get<int>() + 1);
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double per_round = elapsed / std::max(1, iteration - first);
    std::cerr << "iter " << iteration << "/" << config.iterations << "  " << seeds.size() << " seeds  return pre "
              << mean_std(rows, "return_pre_mean") << "  imagined " << mean_std(rows, "imagined_return_pre") << " -> "
              << mean_std(rows, "imagined_return_post") << "  " << std::fixed << std::setprecision(1) << per_round
              << " s/it  ETA " << format_duration(per_round * (config.iterations - iteration)) << std::endl;
  });
  if (!options.quiet && !options.json) {
    std::cerr << "mbmpo train: done, " << group.iterations_done() << " iterations of " << seeds.size()
              << " seeds; their run directories are " << options.run_dir << "/seed-S\n";
  }
  return 0;
}

int run_train(TrainOptions& options) {
  TrainConfig& config = options.config;
  if (options.resume) {
    MBMPO_CHECK_INPUT(!options.run_dir.empty(), "--resume needs --run-dir (the run to continue)");
    check_run_dir_path(options.run_dir);
    MBMPO_CHECK_INPUT(fs::is_directory(options.run_dir), "cannot resume: run directory ", options.run_dir,
                      " does not exist");
    const fs::path config_file = fs::path(options.run_dir) / "config.toml";
    MBMPO_CHECK_INPUT(!fs::exists(config_file) || fs::is_regular_file(config_file), "cannot resume: ",
                      config_file.string(), " is not a file");
    // A resumed run replaces checkpoints/latest by renaming a file onto it, which cannot replace a folder.
    const fs::path latest = fs::path(options.run_dir) / "checkpoints" / "latest";
    MBMPO_CHECK_INPUT(!fs::exists(latest) || fs::is_regular_file(latest), "cannot resume: ", latest.string(),
                      " is not a file (mbmpo writes there the name of the newest checkpoint); move it away");
  }
  for (const TrainField& field : train_fields()) {
    if (auto member = std::get_if<std::vector<int> TrainConfig::*>(&field.member)) {
      config.*(*member) = parse_sizes(options.sizes.at(field.key), flag_name(field));
    }
  }
  validate(config);
  config.env = task_spec(config.env).name;  // the task's own name, also when given by its Gymnasium id
  const Backend backend = resolve_backend(parse_backend_choice(config.device));
  MBMPO_CHECK_INPUT(!options.seeds_given || !options.seed_given, "give --seed or --seeds, not both");
  MBMPO_CHECK_INPUT(!options.seeds_given || !options.seeds.empty(), "--seeds: no seeds given");
  if (options.run_dir.empty()) {
    const std::time_t now = std::time(nullptr);
    std::ostringstream name;
    name << "runs/" << config.env << (options.seeds.empty() ? "-s" + std::to_string(config.seed) : "-seeds")
         << "-" << std::put_time(std::localtime(&now), "%Y%m%d-%H%M%S");
    options.run_dir = name.str();
  }
  if (!options.seeds.empty()) return run_seed_group(options, backend);
  Context context(backend);
  Trainer trainer(context, config, options.run_dir, options.resume);
  // The effective configuration, reusable with --config (CLI11 writes it as TOML).
  write_file_atomically((fs::path(options.run_dir) / "config.toml").string(), config_to_toml(config));
  if (!options.quiet && !options.json) {
    std::cerr << "mbmpo train: " << config.env << " on " << to_string(backend) << ", run directory "
              << options.run_dir << (trainer.iterations_done() > 0 ? " (resumed at iteration " + std::to_string(trainer.iterations_done()) + ")" : "")
              << "\n";
  }
  const auto start = std::chrono::steady_clock::now();
  const int first = trainer.iterations_done();
  trainer.run([&](const nlohmann::ordered_json& row) {
    if (options.json) {
      std::cout << row.dump() << std::endl;
    } else if (!options.quiet) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const int done = row["iteration"].get<int>() + 1 - first;
      std::cerr << progress_line(row, config.iterations, elapsed / std::max(1, done)) << std::endl;
    }
  });
  if (!options.quiet && !options.json) {
    std::cerr << "mbmpo train: done, " << trainer.iterations_done() << " iterations, " << trainer.real_steps()
              << " real steps; policy in " << (fs::path(options.run_dir) / "policy.safetensors").string() << "\n";
  }
  return 0;
}

template <class T>
CLI::Option* hyper(CLI::App* app, const std::string& name, T& value, const std::string& help) {
  // The last occurrence wins, so a flag can override one given earlier (e.g. in a script).
  return strictly<T>(app->add_option("--" + name, value, help)->capture_default_str()->multi_option_policy(
      CLI::MultiOptionPolicy::TakeLast));
}

void define_train_options(CLI::App* train, TrainOptions& o) {
  TrainConfig& c = o.config;
  train->add_option("--run-dir", o.run_dir, "Run directory (default runs/ENV-sSEED-DATE)")
      ->configurable(false)->check(non_empty_path());
  train->add_flag("--resume", o.resume, "Continue the run in --run-dir from its last checkpoint")->configurable(false);
  train->add_option("--preset", o.preset,
                    "smoke: a small run (3 iterations) for a first try; cpu: sizes that learn on a machine "
                    "without a GPU (" + cpu_preset_summary() + ")")
      ->check(CLI::IsMember({"smoke", "cpu"}))->configurable(false);
  train->add_flag("--quiet", o.quiet, "No progress lines")->configurable(false);
  train->add_flag("--json", o.json, "Progress rows as JSON lines on stdout instead of text")->configurable(false);
  train->add_option("--seeds", o.seeds,
                    "Several seeds in one process, e.g. 0-4 or 0,3,7: RUN_DIR/seed-S each, the same files as "
                    "separate runs with --seed S");

  for (const TrainField& field : train_fields()) {
    std::visit(
        [&](auto member) {
          using Value = std::decay_t<decltype(c.*member)>;
          CLI::Option* option = nullptr;
          if constexpr (std::is_same_v<Value, std::vector<int>>) {
            o.sizes[field.key] = join_sizes(c.*member);  // parsed after the flags (run_train)
            option = hyper(train, flag_name(field), o.sizes[field.key], field.help);
          } else {
            option = hyper(train, flag_name(field), c.*member, field.help);
          }
          if (!field.choices.empty()) option->check(CLI::IsMember(field.choices));
        },
        field.member);
  }
}

// The keys config.toml may hold: every field's flag, and --seeds (a group's config.toml has it).
ConfigKeys config_keys() {
  ConfigKeys keys = {{"seeds", ConfigKind::string}};
  for (const TrainField& field : train_fields()) {
    keys[flag_name(field)] = std::visit(
        [](auto member) {
          using Value = std::decay_t<decltype(TrainConfig().*member)>;
          if constexpr (std::is_same_v<Value, std::vector<int>>) return ConfigKind::sizes;
          else if constexpr (std::is_same_v<Value, std::string>) return ConfigKind::string;
          else if constexpr (std::is_same_v<Value, bool>) return ConfigKind::boolean;
          else if constexpr (std::is_floating_point_v<Value>) return ConfigKind::floating;
          else return ConfigKind::integer;
        },
        field.member);
  }
  return keys;
}

struct EvalOptions {
  std::string run_dir, checkpoint;
  EvaluationOptions evaluation;
  bool json = false;
};

int run_eval(const EvalOptions& o) {
  MBMPO_CHECK_INPUT(o.run_dir.empty() != o.checkpoint.empty(), "give exactly one of --run-dir and --checkpoint");
  const Evaluation evaluation = evaluate_saved_policy(o.run_dir.empty() ? o.checkpoint : o.run_dir, o.evaluation);
  const ReturnStats& stats = evaluation.stats;
  const std::string& env = evaluation.env;
  if (o.json) {
    std::cout << nlohmann::json{{"env", env}, {"episodes", o.evaluation.episodes}, {"adapted", o.evaluation.adapt},
                                {"return_mean", stats.mean()}, {"return_std", stats.std()},
                                {"returns", stats.returns}}.dump()
              << "\n";
  } else {
    std::cout << env << (o.evaluation.adapt ? " (after one adaptation step per model)" : "") << ": return "
              << std::fixed << std::setprecision(2) << stats.mean() << " ± " << stats.std() << " over "
              << o.evaluation.episodes << " episodes\n";
    for (std::size_t i = 0; i < stats.returns.size(); ++i) {
      std::cout << "  episode " << i << ": " << stats.returns[i] << "\n";
    }
  }
  return 0;
}

}  // namespace

void add_train_commands(CLI::App& app, Action& action, int argc, char** argv) {
  auto options = std::make_shared<TrainOptions>();
  CLI::App* train = app.add_subcommand("train", "Train an MB-MPO policy (writes a run directory)");
  // The preset changes the defaults before the flags are defined, so that explicit flags and
  // config keys override it and config.toml records the values actually used.
  const std::string preset = scan_flag(argc, argv, "--preset");
  options->seed_given = has_flag(argc, argv, "--seed") || !scan_flag(argc, argv, "--seed").empty();
  options->seeds_given = has_flag(argc, argv, "--seeds") || !scan_flag(argc, argv, "--seeds").empty();
  // --resume reads the run's own config.toml unless --config names another file.
  std::string default_config;
  if (has_flag(argc, argv, "--resume") && scan_flag(argc, argv, "--config").empty()) {
    const std::string run_dir = scan_flag(argc, argv, "--run-dir");
    if (!run_dir.empty() && fs::exists(fs::path(run_dir) / "config.toml")) {
      default_config = (fs::path(run_dir) / "config.toml").string();
    }
  }
  const std::string config_file = scan_flag(argc, argv, "--config");
  if (preset == "smoke") apply_smoke_preset(options->config);
  if (preset == "cpu") {
    // The task picks the preset's meta-steps: --env wins over the config file, as CLI11 does.
    std::string env = scan_flag(argc, argv, "--env");
    if (env.empty()) env = config_file_env(config_file.empty() ? default_config : config_file);
    apply_cpu_preset(options->config, env);
  }
  // CLI11 reads config files on the main app: keys of the [train] section go to this command.
  app.set_config("--config", default_config,
                 "mbmpo train: read settings from this TOML file ([train] section, keys as the flags' names)")
      ->check(non_empty_path());
  app.allow_config_extras(false);  // an unknown key in the file is an error
  app.config_formatter(toml_config_reader(config_file.empty() ? default_config : config_file, config_keys()));
  train->fallthrough();            // so that `mbmpo train --config FILE` reaches the main app's option
  define_train_options(train, *options);
  train->callback([options, &action] { action = [options] { return run_train(*options); }; });

  auto eval_options = std::make_shared<EvalOptions>();
  CLI::App* eval = app.add_subcommand("eval", "Real-environment returns of a trained policy");
  eval->add_option("--run-dir", eval_options->run_dir, "A run directory (its latest checkpoint)");
  eval->add_option("--checkpoint", eval_options->checkpoint,
                   "A checkpoint directory, checkpoints/latest (the newest sound checkpoint) or a policy .safetensors");
  strictly<int>(eval->add_option("--episodes", eval_options->evaluation.episodes, "Episodes")->capture_default_str());
  eval->add_flag("--adapt", eval_options->evaluation.adapt, "Evaluate after one adaptation step per model");
  strictly<std::uint64_t>(
      eval->add_option("--seed", eval_options->evaluation.seed, "Seed of the episodes")->capture_default_str());
  strictly<int>(eval->add_option("--threads", eval_options->evaluation.threads, "Worker threads")->capture_default_str());
  eval->add_option("--device", eval_options->evaluation.device, "Backend for --adapt")
      ->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  eval->add_flag("--json", eval_options->json, "One JSON object on stdout");
  eval->callback([eval_options, &action] { action = [eval_options] { return run_eval(*eval_options); }; });
}

}  // namespace mbmpo::app
