// Imagined rollouts: T tasks x M rollouts x H steps through the learned dynamics, task t with its
// own policy parameters on model t mod K (docs/algorithm.md, "3a and 3d. Imagined rollouts").
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "host/policy/policy_layout.hpp"
#include "host/policy/policy_ops_cpu.hpp"

namespace mbmpo {

// One batch of imagined trajectories on the backend, [T][M][H][...]. A trajectory that ends
// (the task's termination on the predicted state) has valid = 0, reward 0 and log-prob 0 from
// the next step on.
struct Trajectories {
  RolloutDims dims;
  Tensor<float> obs, act, reward, valid, logp;

  Trajectories() = default;
  Trajectories(Backend backend, const RolloutDims& d);
  // [T][M*H][...] views: the per-task sample sets the policy gradients work on.
  TensorView<const float> obs_by_task() const;
  TensorView<const float> act_by_task() const;
};

struct RolloutOptions {
  std::uint64_t seed = 0;
  // Several seeds' tasks in one rollout (`mbmpo train --seeds`): the T tasks are B = seeds.size()
  // equal consecutive blocks, seed g's with its noise keyed by seeds[g] (its tasks counted from 0)
  // and its rows on seed g's models of an EnsembleStack's ensemble, so each seed's trajectories
  // are bit for bit those of a rollout of its own. Empty: one seed, `seed`.
  std::vector<std::uint64_t> seeds;
  std::uint64_t draw = 0;  // which rollout batch (e.g. 2 * meta_step + post): keys the noise
  bool cuda_graph = true;  // record the H steps as one CUDA graph (CUDA backend)
};

// params [T][P]; start_obs [T][M][obs_dim]. Task t of seed g (see RolloutOptions::seeds) runs on
// model g K + (t - g T/B) mod K, K the models per seed. Actions are sampled from the Gaussian policy with
// Philox noise keyed by (seed, draw, task, rollout, step), so both backends produce the same
// trajectories; the model and the reward see them clipped to the task's action range, the
// log-probabilities refer to the sampled (unclipped) actions.
void imagined_rollout(Context& context, TaskId task, DynamicsEnsemble& models,
                      const PolicyLayout& layout, TensorView<const float> params,
                      TensorView<const float> start_obs, const RolloutOptions& options,
                      Trajectories& out);

// The same rollout, by an object that keeps its step buffers, its model assignment and its CUDA
// graph between calls of one shape (every meta-step of a training run): after the first call, a
// rollout allocates nothing and instantiates no new graph (the graph is re-recorded and updated
// in place). On CUDA, run() returns with the work queued on the context's stream.
class ImaginedRollout {
 public:
  ImaginedRollout(Context& context, const RolloutDims& dims);
  ~ImaginedRollout();
  ImaginedRollout(const ImaginedRollout&) = delete;
  ImaginedRollout& operator=(const ImaginedRollout&) = delete;

  void run(TaskId task, DynamicsEnsemble& models, const PolicyLayout& layout,
           TensorView<const float> params, TensorView<const float> start_obs,
           const RolloutOptions& options, Trajectories& out);
  const RolloutDims& dims() const { return dims_; }
  int graph_instantiations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  RolloutDims dims_;
};

}  // namespace mbmpo
