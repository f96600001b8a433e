// Advantages of imagined trajectories (docs/algorithm.md, "3b. Baseline and advantages"): per task
// a linear feature baseline fitted by least squares on the discounted returns, GAE, per-task
// standardisation.
#pragma once

#include "host/core/context.hpp"
#include "host/policy/imagined_rollout.hpp"

namespace mbmpo {

struct AdvantageOptions {
  double discount = 0.99;
  double gae_lambda = 1.0;
  double baseline_ridge = 1e-5;
  double obs_clip = 10.0;  // of the baseline's features
  bool normalize = true;
};

struct Advantages {
  Tensor<float> advantages;  // [T][M][H], 0 where the trajectory had ended
  Tensor<float> returns;     // [T][M][H] discounted reward-to-go
  Tensor<float> valid_count;  // [T] valid samples per task
  Tensor<double> baseline;   // [T][F] linear baseline coefficients, F = 2 obs_dim + 4

  Advantages() = default;
  Advantages(Backend backend, const RolloutDims& d);
  TensorView<const float> by_task() const;  // [T][M*H]
};

void compute_advantages(Context& context, const Trajectories& trajectories,
                        const AdvantageOptions& options, Advantages& out);

}  // namespace mbmpo
