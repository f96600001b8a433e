// The MB-MPO training loop (docs/algorithm.md, "Algorithm 1"): real data, ensemble fit, meta-steps,
// and per iteration a progress row and an atomic checkpoint in the run directory
// (host/train/run_directory.hpp), from which a run resumes exactly where it stopped.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/core/context.hpp"
#include "host/train/train_config.hpp"

namespace mbmpo {

class Trainer {
 public:
  // resume: continue from run_dir's latest checkpoint (InputError when there is none or it does
  // not match the configuration); otherwise run_dir must not hold a run yet.
  Trainer(Context& context, const TrainConfig& config, const std::string& run_dir, bool resume);
  ~Trainer();

  // Runs iterations until config.iterations are done; after each, on_row gets its progress row
  // (already written to progress.csv/.jsonl, with the checkpoint after it), columns in order.
  // on_meta_step (optional) is called after each meta-step with (iteration, meta-step), once its
  // work has finished: tests use it to watch what a meta-step allocates.
  // until >= 0 stops after that many iterations in all.
  void run(const std::function<void(const nlohmann::ordered_json& row)>& on_row,
           const std::function<void(int iteration, int meta_step)>& on_meta_step = {}, int until = -1);
  // Several trainers' iterations together: the seeds of one configuration in one process
  // (`mbmpo train --seeds`). Each keeps its own environments, dataset, ensemble, policy and run
  // directory and gets exactly the files of a run of its own, but their meta-steps run as one
  // batch: the B seeds' tasks in the same rollout, advantage and inner-step launches, their
  // ensembles stacked into one (B K models in each layer call), their meta-updates as B systems of
  // one CG with a line search per seed. The model fits are one batched fit
  // (EnsembleStack::fit; one after another past its 64 models); the seeds' real
  // episodes run side by side as far as the cores allow.
  // The trainers must share one context and every setting but the seed, and have done the same
  // iterations. on_rows gets each iteration's rows, in the trainers' order.
  static void run_together(const std::vector<Trainer*>& trainers,
                           const std::function<void(const std::vector<nlohmann::ordered_json>& rows)>& on_rows,
                           const std::function<void(int iteration, int meta_step)>& on_meta_step = {},
                           int until = -1);
  int iterations_done() const;
  std::int64_t real_steps() const;

  struct State;  // one seed's run: its environment, dataset, ensemble, policy, run directory

 private:
  std::unique_ptr<State> state_;
};

}  // namespace mbmpo
