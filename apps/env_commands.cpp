// `mbmpo envs` lists the tasks; `mbmpo collect` records uniformly random episodes to CSV.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "apps/commands.hpp"
#include "apps/path_flags.hpp"
#include "apps/strict_value.hpp"
#include "host/core/atomic_file.hpp"
#include "host/core/error.hpp"
#include "host/core/memory_budget.hpp"
#include "host/envs/sampler.hpp"

namespace mbmpo::app {

namespace {

struct CollectOptions {
  std::string env;
  int episodes = 1;
  int horizon = 200;
  std::uint64_t seed = 0;
  int threads = 1;
  std::string out;
};

void write_csv_header(std::ostringstream& csv, const Episode& e) {
  csv << "episode,t";
  for (int j = 0; j < e.obs_dim; ++j) csv << ",obs_" << j;
  for (int j = 0; j < e.act_dim; ++j) csv << ",act_" << j;
  csv << ",reward";
  for (int j = 0; j < e.obs_dim; ++j) csv << ",next_obs_" << j;
  csv << ",done";
  for (int j = 0; j < e.nq; ++j) csv << ",qpos_" << j;
  for (int j = 0; j < e.nv; ++j) csv << ",qvel_" << j;
  csv << "\n";
}

void write_csv_rows(std::ostringstream& csv, const Episode& e) {
  for (int t = 0; t < e.length; ++t) {
    csv << e.index << "," << t;
    for (int j = 0; j < e.obs_dim; ++j) csv << "," << e.obs[t * e.obs_dim + j];
    for (int j = 0; j < e.act_dim; ++j) csv << "," << e.act[t * e.act_dim + j];
    csv << "," << e.reward[t];
    for (int j = 0; j < e.obs_dim; ++j) csv << "," << e.next_obs[t * e.obs_dim + j];
    csv << "," << static_cast<int>(e.done[t]);
    for (int j = 0; j < e.nq; ++j) csv << "," << e.qpos[t * e.nq + j];
    for (int j = 0; j < e.nv; ++j) csv << "," << e.qvel[t * e.nv + j];
    csv << "\n";
  }
}

int run_collect(const CollectOptions& options) {
  const TaskSpec& task = task_spec(options.env);
  check_output_file("--out", options.out);
  // The episodes and their CSV text (about 16 characters a number) are held until the file is
  // written at once.
  const double steps_at_most = double(options.episodes) * options.horizon;
  check_memory(Backend::cpu, steps_at_most * (2.0 * task.obs_dim + task.act_dim + 3) * (sizeof(float) + 16),
               "--episodes " + std::to_string(options.episodes) + " of --horizon " + std::to_string(options.horizon));
  auto model = MujocoModel::load(task);
  Sampler sampler(model);
  SamplerOptions sampler_options;
  sampler_options.episodes = options.episodes;
  sampler_options.horizon = options.horizon;
  sampler_options.seed = options.seed;
  sampler_options.threads = options.threads;
  const auto episodes =
      sampler.run(sampler_options, uniform_random_policy(options.seed, task.action_limit));

  std::ostringstream csv;
  csv << std::setprecision(9);  // floats round-trip
  write_csv_header(csv, episodes.front());
  long steps = 0;
  double total = 0;
  for (const Episode& e : episodes) {
    write_csv_rows(csv, e);
    steps += e.length;
    total += e.total_return;
  }
  write_file_atomically(options.out, csv.str());
  std::cerr << "collect: " << task.name << ", " << episodes.size() << " episodes, " << steps
            << " transitions, mean return " << total / static_cast<double>(episodes.size())
            << " -> " << options.out << "\n";
  return 0;
}

int run_envs() {
  std::cout << std::left << std::setw(20) << "task" << std::setw(6) << "obs" << std::setw(6) << "act"
            << std::setw(10) << "action" << std::setw(8) << "dt" << "horizon\n";
  for (const TaskSpec& task : all_tasks()) {
    const auto model = MujocoModel::load(task);
    std::ostringstream range;
    range << "+-" << task.action_limit;
    std::cout << std::left << std::setw(20) << task.name << std::setw(6) << task.obs_dim
              << std::setw(6) << task.act_dim << std::setw(10) << range.str() << std::setw(8)
              << model->dt() << 200 << "\n";
  }
  return 0;
}

}  // namespace

void add_env_commands(CLI::App& app, Action& action) {
  CLI::App* envs = app.add_subcommand("envs", "List the tasks with observation/action sizes, dt and default horizon");
  envs->callback([&action] { action = run_envs; });

  auto options = std::make_shared<CollectOptions>();
  CLI::App* collect = app.add_subcommand(
      "collect", "Run a uniformly random policy on a task and write every transition to CSV");
  collect->add_option("--env", options->env, "Task name (see mbmpo envs)")->required();
  strictly<int>(collect->add_option("--episodes", options->episodes, "Number of episodes"))
      ->capture_default_str()->check(CLI::Range(1, 100000000));
  strictly<int>(collect->add_option("--horizon", options->horizon, "Steps per episode at most"))
      ->capture_default_str()->check(CLI::Range(1, 100000000));
  strictly<std::uint64_t>(collect->add_option("--seed", options->seed, "Seed of reset noise and actions"))
      ->capture_default_str();
  strictly<int>(collect->add_option("--threads", options->threads, "Worker threads"))
      ->capture_default_str()->check(CLI::Range(1, 100000000));
  collect->add_option("--out", options->out, "Output CSV file (written atomically)")->required()->check(non_empty_path());
  collect->callback([options, &action] { action = [options] { return run_collect(*options); }; });
}

}  // namespace mbmpo::app
