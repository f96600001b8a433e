// Several seeds of one configuration in one process (`mbmpo train --seeds 0-4`): each seed has its
// own environments, dataset, ensemble, policy and run directory, RUN_DIR/seed-S, the same as a
// single-seed run directory, and gives the same files as a separate run with --seed S.
//
// The seeds share one context and run each iteration's meta-steps as one batch (Trainer::
// run_together): B*T tasks in one rollout, B*K models in each layer call, B systems in one CG.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/core/context.hpp"
#include "host/train/train_config.hpp"
#include "host/train/trainer.hpp"

namespace mbmpo {

// "0-4", "0,3,7" or "0-2,5": ascending or not, each seed once. InputError names the problem.
std::vector<std::uint64_t> parse_seed_list(const std::string& text);

// RUN_DIR/seed-S.
std::string seed_run_dir(const std::string& run_dir, std::uint64_t seed);

// The group's config.toml files: RUN_DIR/config.toml holds the settings and `seeds="TEXT"` (what
// --resume and --config read), each RUN_DIR/seed-S/config.toml the settings with seed = S, as a
// single run's does. Written after the SeedGroup is made (it checks everything first).
void write_seed_group_configs(const std::string& run_dir, const TrainConfig& config,
                              const std::vector<std::uint64_t>& seeds, const std::string& seeds_text);

class SeedGroup {
 public:
  // config.seed is replaced by each seed; resume continues every seed's run directory.
  SeedGroup(Backend backend, const TrainConfig& config, const std::vector<std::uint64_t>& seeds,
            const std::string& run_dir, bool resume);
  ~SeedGroup();

  // Iteration by iteration: the seeds run the iteration together, then on_round gets their progress
  // rows (in the order of the seeds; a null row for a seed that was already past that iteration).
  void run(const std::function<void(const std::vector<nlohmann::ordered_json>& rows)>& on_round);
  int iterations_done() const;  // of the seed that is furthest behind
  const std::vector<std::uint64_t>& seeds() const { return seeds_; }

 private:
  std::vector<std::uint64_t> seeds_;
  int iterations_ = 0;
  std::unique_ptr<Context> context_;
  std::vector<std::unique_ptr<Trainer>> trainers_;
};

}  // namespace mbmpo
