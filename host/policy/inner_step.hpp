// The MAML inner step (docs/algorithm.md, "3c. The inner step"): for every task at once,
//   theta'_t = theta + alpha * grad_theta mean_{valid samples of t}(log pi_theta(a|s) * A),
// applied to every parameter including the log-std.
#pragma once

#include "host/core/context.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/policy_layout.hpp"

namespace mbmpo {

// theta [P], or [B][P] for B seeds (B seeds' meta-policies; B divides T): task t belongs to seed
// g = t / (T/B) and steps from theta[g], exactly as a B = 1 call on that seed's tasks alone would.
// adapted [T][P]. The samples were drawn with theta (the pre-update policy).
void inner_step(Context& context, const PolicyLayout& layout, TensorView<const float> theta,
                const Trajectories& samples, const Advantages& advantages, double alpha,
                TensorView<float> adapted);

}  // namespace mbmpo
