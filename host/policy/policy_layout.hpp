// The Gaussian policy's parameters as one flat vector (what the inner step and the conjugate
// gradient solver work on): for each layer W [out][in] then b [out], and at the end the
// state-independent log standard deviations [act_dim]. Hidden layers use tanh; the output
// layer (the mean) is linear.
#pragma once

#include <cstdint>
#include <vector>

#include "host/core/error.hpp"

namespace mbmpo {

struct PolicyLayer {
  int in = 0, out = 0;
  std::int64_t w_offset = 0, b_offset = 0;
};

// Largest supported width of any layer and depth. Both backends run the policy as batched
// products (no per-thread copy of a sample's activations); the bound keeps the per-sample CPU
// reference (PolicyActivations, kernels/policy/gaussian_policy.cuh) on the stack.
constexpr int kMaxPolicyWidth = 256;
constexpr int kMaxPolicyLayers = 4;

class PolicyLayout {
 public:
  PolicyLayout() = default;
  PolicyLayout(int obs_dim, int act_dim, const std::vector<int>& hidden)
      : obs_dim_(obs_dim), act_dim_(act_dim), hidden_(hidden) {
    MBMPO_CHECK_INPUT(obs_dim > 0 && act_dim > 0, "policy: observation and action sizes (obs_dim, act_dim) must be positive, got ", obs_dim, " and ", act_dim);
    MBMPO_CHECK_INPUT(int(hidden.size()) + 1 <= kMaxPolicyLayers, "policy: at most ",
                      kMaxPolicyLayers - 1, " hidden layers, got ", hidden.size());
    MBMPO_CHECK_INPUT(obs_dim <= kMaxPolicyWidth && act_dim <= kMaxPolicyWidth,
                      "policy: observation and action sizes above ", kMaxPolicyWidth, " are not supported");
    int in = obs_dim;
    std::int64_t offset = 0;
    for (std::size_t l = 0; l <= hidden.size(); ++l) {
      const int out = l == hidden.size() ? act_dim : hidden[l];
      MBMPO_CHECK_INPUT(out > 0 && out <= kMaxPolicyWidth, "policy: hidden sizes must be in [1, ",
                        kMaxPolicyWidth, "], got ", out);
      PolicyLayer layer{in, out, offset, offset + std::int64_t(out) * in};
      offset = layer.b_offset + out;
      layers_.push_back(layer);
      in = out;
    }
    log_std_offset_ = offset;
    parameter_count_ = offset + act_dim;
  }

  int obs_dim() const { return obs_dim_; }
  int act_dim() const { return act_dim_; }
  const std::vector<int>& hidden() const { return hidden_; }
  const std::vector<PolicyLayer>& layers() const { return layers_; }
  std::int64_t log_std_offset() const { return log_std_offset_; }
  std::int64_t parameter_count() const { return parameter_count_; }
  std::int64_t forward_macs() const {
    std::int64_t macs = 0;
    for (const auto& l : layers_) macs += std::int64_t(l.in) * l.out;
    return macs;
  }

 private:
  int obs_dim_ = 0, act_dim_ = 0;
  std::vector<int> hidden_;
  std::vector<PolicyLayer> layers_;
  std::int64_t log_std_offset_ = 0, parameter_count_ = 0;
};

// The same layout as plain data for kernels (passed by value).
struct PolicyShape {
  int layers = 0;
  int in[kMaxPolicyLayers] = {}, out[kMaxPolicyLayers] = {};
  int w_offset[kMaxPolicyLayers] = {}, b_offset[kMaxPolicyLayers] = {};
  int log_std_offset = 0, parameter_count = 0, obs_dim = 0, act_dim = 0;
};

inline PolicyShape policy_shape(const PolicyLayout& layout) {
  PolicyShape s;
  s.layers = int(layout.layers().size());
  for (int l = 0; l < s.layers; ++l) {
    const PolicyLayer& layer = layout.layers()[l];
    s.in[l] = layer.in;
    s.out[l] = layer.out;
    s.w_offset[l] = int(layer.w_offset);
    s.b_offset[l] = int(layer.b_offset);
  }
  s.log_std_offset = int(layout.log_std_offset());
  s.parameter_count = int(layout.parameter_count());
  s.obs_dim = layout.obs_dim();
  s.act_dim = layout.act_dim();
  return s;
}

}  // namespace mbmpo
