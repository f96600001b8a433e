// The outer MB-MPO update: one TRPO step on the meta-policy theta through the inner step, exact
// second order (docs/algorithm.md, step 3e; the math is in host/policy/meta_objective_cpu.hpp):
//   g = (1/T) sum_t J_t g_t,  A v = (1/T) sum_t J_t F_t J_t v + damping v,
//   x = CG(A, g) (batched CG, entirely on the device on CUDA),  s = sqrt(2 max_kl / x.Ax) x,
// then a backtracking line search on theta + ratio^k s that recomputes every theta'_t on the
// stored pre-update samples and accepts the first candidate that improves the surrogate with a
// mean KL <= max_kl; otherwise theta is kept.
//
// Seeds: theta may be [B][P] for B independent meta-policies (B seeds in one process), the T
// tasks split into B equal consecutive blocks, task t in seed t / (T/B). Each seed is its own
// MB-MPO update (its own gradient, curvature, CG system, step scale, line search and report, means
// over its own tasks), run through the same launches as the other seeds', and on the CPU bit for
// bit the update a B = 1 objective of that seed's tasks alone would make.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/meta_objective_cpu.hpp"
#include "host/policy/policy_layout.hpp"

namespace mbmpo {

struct MetaUpdateOptions {
  double inner_lr = 1e-3;      // alpha, the inner step's size (must match the inner step)
  double max_kl = 0.01;        // delta, the trust region
  double damping = 1e-5;       // lambda in A v
  int cg_iterations = 10;
  double cg_residual_tolerance = 1e-10;
  double backtrack_ratio = 0.8;
  int max_backtracks = 15;
  bool first_order = false;    // J_t = I: drop the Hessian of the inner step
  double fisher_subsample = 1.0;  // fraction of post-update states used by the Fisher products
  std::uint64_t seed = 0, draw = 0;  // key the Fisher subsample
  // With seeds: seed g's Fisher subsample is keyed by seeds[g] (empty: `seed` for
  // every seed) and its samples counted from the seed's first, as a B = 1 run of its tasks would.
  std::vector<std::uint64_t> seeds;
  bool cuda_graph = true;      // record the CG iterations as one CUDA graph
};

// Throws InputError naming the first bad option.
void validate(const MetaUpdateOptions& options);

struct MetaUpdateReport {
  double surrogate_before = 0, surrogate_after = 0;
  double kl = 0;               // mean KL of the accepted step (0 when rejected)
  double step_fraction = 0;    // ratio^k of the accepted candidate, 0 when rejected
  int backtracks = 0;          // candidates tried
  bool accepted = false;
  double gradient_norm = 0;    // ||g||
  double cg_residual = 0;      // ||g - A x|| / ||g|| after CG
  double step_scale = 0;       // sqrt(2 max_kl / x.Ax)
  double seconds_meta_gradient = 0, seconds_cg = 0, seconds_line_search = 0;
};

// The meta-objective around one meta-policy theta_old (or B of them) and its samples, on the
// context's backend: its gradient, the constraint's curvature-vector product and the values of
// the surrogate and the KL at any theta. Holds pointers into the samples (keep them alive) and its
// own workspace, so a CG solve allocates nothing per iteration.
class MetaObjective {
 public:
  // theta [P] or [B][P]: theta_old (B seeds, B divides T, fixed for the objective's life);
  // adapted [T][P]: the theta'_t(theta_old) the post-update samples were drawn with; pre/post: the
  // imagined samples and their advantages (T tasks each).
  MetaObjective(Context& context, const PolicyLayout& layout, TensorView<const float> theta,
                TensorView<const float> adapted, const Trajectories& pre,
                const Advantages& pre_advantages, const Trajectories& post,
                const Advantages& post_advantages, const MetaUpdateOptions& options);
  ~MetaObjective();
  // The same objective around new samples of the same shape (the next meta-step), reusing the
  // workspace: nothing is allocated. theta has the construction's B. draw keys the Fisher subsample.
  void rebind(TensorView<const float> theta, TensorView<const float> adapted, const Trajectories& pre,
              const Advantages& pre_advantages, const Trajectories& post, const Advantages& post_advantages,
              std::uint64_t draw);
  MetaObjective(const MetaObjective&) = delete;
  MetaObjective& operator=(const MetaObjective&) = delete;

  // B, the number of seeds (meta-policies).
  int seeds() const;
  // out[g] = (1/Tb) sum_{t in g} J_t g_t, the gradient of seed g's surrogate at theta_old[g];
  // out [P] (B = 1) or [B][P].
  void gradient(TensorView<float> out);
  // out[g] = A_g v[g] = (1/Tb) sum_{t in g} J_t F_t J_t v[g] + damping v[g]; v, out [P] (B = 1) or [B][P].
  void curvature(TensorView<const float> v, TensorView<float> out);
  // The surrogate and the mean KL at theta [P] (B = 1 only).
  cpu::SurrogateAndKl evaluate(TensorView<const float> theta);
  // Per seed, the surrogate and the mean KL of its tasks at theta[g]; theta [P] (B = 1) or [B][P].
  std::vector<cpu::SurrogateAndKl> evaluate_per_seed(TensorView<const float> theta);
  // The TRPO step from theta_old (B = 1 only): writes the accepted parameters (or theta_old) to theta [P].
  MetaUpdateReport update(TensorView<float> theta);
  // The TRPO step of every seed from theta_old: theta[g] gets seed g's accepted parameters (or
  // theta_old[g]); theta [P] (B = 1) or [B][P]. One report per seed. The seeds' line searches run
  // together (one evaluation over all tasks per round) until every seed has decided.
  std::vector<MetaUpdateReport> update_per_seed(TensorView<float> theta);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One meta-update: MetaObjective(...).update(theta), with theta [P] as theta_old, updated in place.
MetaUpdateReport meta_update(Context& context, const PolicyLayout& layout, TensorView<float> theta,
                             TensorView<const float> adapted, const Trajectories& pre,
                             const Advantages& pre_advantages, const Trajectories& post,
                             const Advantages& post_advantages, const MetaUpdateOptions& options);

}  // namespace mbmpo
