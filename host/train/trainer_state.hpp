// One seed's run (Trainer::State): its environment, dataset, ensemble, policy and run directory,
// and how far it has come. The loop (trainer.cpp) works on it; the run directory's files
// (run_directory.cpp) save and restore it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"
#include "host/data/dataset.hpp"
#include "host/envs/environment.hpp"
#include "host/envs/task.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/policy/policy_layout.hpp"
#include "host/train/real_episodes.hpp"
#include "host/train/train_config.hpp"
#include "host/train/trainer.hpp"

namespace mbmpo {

struct Trainer::State {
  Context& context;
  TrainConfig config;
  std::filesystem::path run_dir;
  const TaskSpec& task;
  PolicyLayout layout;
  std::shared_ptr<const MujocoModel> mujoco;
  DynamicsEnsemble models;
  Dataset dataset;
  Tensor<float> theta, adapted;  // [P], [T][P] (the last meta-step's adapted policies)
  int iterations_done = 0;
  std::int64_t real_steps = 0;
  std::uint64_t episodes_started = 0;
  std::vector<nlohmann::ordered_json> rows;  // progress rows of the iterations done

  // A fresh run: the initial policy and ensemble from config.seed, an empty dataset.
  State(Context& c, const TrainConfig& cfg, const std::string& dir);

  // Step 1 of Algorithm 1, real data for this iteration: random actions first, then one episode
  // per task with its adapted policy. Returns the returns of the adapted policies' episodes (none
  // at first).
  ReturnStats collect();

  // The run directory (run_directory.cpp).
  std::filesystem::path checkpoints() const { return run_dir / "checkpoints"; }
  void save_checkpoint();  // checkpoints/iter-N, atomically; keeps the newest two
  // The latest checkpoint and the progress rows before it; nothing changes unless all of it reads
  // and matches the configuration (InputError otherwise).
  void load_checkpoint();
  void write_progress();     // progress.jsonl and progress.csv from rows, atomically
  void save_final_files();   // policy.safetensors and models.safetensors at the top level
};

}  // namespace mbmpo
