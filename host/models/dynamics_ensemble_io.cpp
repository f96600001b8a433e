// The model file of a DynamicsEnsemble (dynamics_ensemble.hpp, save and load).
#include "host/models/dynamics_ensemble.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <tuple>

#include "host/core/safetensors.hpp"
#include "host/core/sizes_text.hpp"

namespace mbmpo {
namespace {

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::relu: return "relu";
    case Activation::tanh: return "tanh";
    case Activation::swish: return "swish";
    case Activation::identity: return "identity";
  }
  return "?";
}

// A positive integer of the metadata (below a bound that keeps it an int; the ensemble's own
// checks bound the sizes it supports).
constexpr long kMaxModelFileSize = 1L << 30;
int positive_field(const Safetensors& file, const std::string& path, const char* key) {
  const std::string text = file.metadata(key);
  const bool digits = !text.empty() && text.size() <= 10 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    const long value = std::stol(text);
    if (value > 0 && value <= kMaxModelFileSize) return int(value);
  }
  throw InputError(path + ": its " + key + " metadata '" + text + "' is not a positive integer");
}

}  // namespace

ModelFileArchitecture read_model_file_architecture(const std::string& path) {
  const Safetensors file = Safetensors::load(path);
  MBMPO_CHECK_INPUT(file.metadata("format") == "mbmpo.dynamics_ensemble.v1", path,
                    ": not a dynamics-ensemble file (format '", file.metadata("format"), "')");
  ModelFileArchitecture a;
  a.obs_dim = positive_field(file, path, "obs_dim");
  a.act_dim = positive_field(file, path, "act_dim");
  a.config.models = positive_field(file, path, "models");
  const std::string hidden = file.metadata("hidden");  // "" for an ensemble without hidden layers
  a.config.hidden = hidden.empty() ? std::vector<int>{} : parse_sizes(hidden, path + ": its hidden metadata");
  const std::string activation = file.metadata("activation");
  if (activation == "relu") a.config.activation = Activation::relu;
  else if (activation == "tanh") a.config.activation = Activation::tanh;
  else if (activation == "swish") a.config.activation = Activation::swish;
  else throw InputError(path + ": its activation metadata '" + activation + "' is not relu, tanh or swish");
  const std::string eps = file.metadata("normalization_eps");
  try {
    std::size_t used = 0;
    a.config.normalization_eps = std::stod(eps, &used);
    MBMPO_CHECK_INPUT(used == eps.size() && std::isfinite(a.config.normalization_eps) && a.config.normalization_eps >= 0,
                      path, ": its normalization_eps metadata '", eps, "' is not a number >= 0");
  } catch (const std::logic_error&) {
    throw InputError(path + ": its normalization_eps metadata '" + eps + "' is not a number >= 0");
  }
  if (file.all_metadata().count("tf32") != 0) {  // files written before it was recorded: FP32
    const std::string tf32 = file.metadata("tf32");
    MBMPO_CHECK_INPUT(tf32 == "true" || tf32 == "false", path, ": its tf32 metadata '", tf32, "' is not true or false");
    a.config.tf32 = tf32 == "true";
  }
  return a;
}

void DynamicsEnsemble::save(const std::string& path, bool include_optimizer) const {
  MBMPO_CHECK(seeds_ == 1, "dynamics ensemble: a stack of ensembles is not saved (save each seed's own)");
  Safetensors file;
  const std::vector<float> params = params_.to_host(&context_);
  const std::int64_t K = layout_.models();
  for (std::size_t l = 0; l < layout_.layers().size(); ++l) {
    const auto& layer = layout_.layers()[l];
    const std::string prefix = "layer" + std::to_string(l) + ".";
    auto slice = [&](std::int64_t offset, std::int64_t count) {
      return std::vector<float>(params.begin() + offset, params.begin() + offset + count);
    };
    file.put_f32(prefix + "v", {K, layer.out, layer.in}, slice(layer.v_offset, K * layer.out * layer.in));
    file.put_f32(prefix + "g", {K, layer.out}, slice(layer.g_offset, K * layer.out));
    file.put_f32(prefix + "b", {K, layer.out}, slice(layer.b_offset, K * layer.out));
  }
  const std::vector<float> norm = normalization_.to_host(&context_);
  const int in = obs_dim_ + act_dim_;
  file.put_f32("normalization.input_mean", {in}, {norm.begin(), norm.begin() + in});
  file.put_f32("normalization.input_std", {in}, {norm.begin() + in, norm.begin() + 2 * in});
  file.put_f32("normalization.delta_mean", {obs_dim_}, {norm.begin() + 2 * in, norm.begin() + 2 * in + obs_dim_});
  file.put_f32("normalization.delta_std", {obs_dim_}, {norm.begin() + 2 * in + obs_dim_, norm.end()});
  if (include_optimizer) {
    file.put_f32("adam.m", {layout_.parameter_count()}, adam_m_.to_host(&context_));
    file.put_f32("adam.v", {layout_.parameter_count()}, adam_v_.to_host(&context_));
    file.put_i64("adam.steps", {K}, adam_steps_);
    file.put_i64("fits_done", {1}, {std::int64_t(fits_done_)});
  }
  const std::string hidden = join_sizes(layout_.hidden());
  file.set_metadata("format", "mbmpo.dynamics_ensemble.v1");
  file.set_metadata("models", std::to_string(K));
  file.set_metadata("obs_dim", std::to_string(obs_dim_));
  file.set_metadata("act_dim", std::to_string(act_dim_));
  file.set_metadata("hidden", hidden);
  file.set_metadata("activation", activation_name(config_.activation));
  std::ostringstream eps;
  eps << std::setprecision(17) << config_.normalization_eps;
  file.set_metadata("normalization_eps", eps.str());
  // How the products ran on CUDA: a loaded ensemble predicts as this one did (not a shape: a file
  // of either setting loads into any ensemble of its architecture).
  file.set_metadata("tf32", config_.tf32 ? "true" : "false");
  file.save(path);
}

void DynamicsEnsemble::load(const std::string& path) {
  MBMPO_CHECK(seeds_ == 1, "dynamics ensemble: a stack of ensembles is not loaded (load each seed's own)");
  const Safetensors file = Safetensors::load(path);
  MBMPO_CHECK_INPUT(file.metadata("format") == "mbmpo.dynamics_ensemble.v1", path,
                    ": not a dynamics-ensemble file (format '", file.metadata("format"), "')");
  const std::string hidden = join_sizes(layout_.hidden());
  auto expect_meta = [&](const char* key, const std::string& expected) {
    const std::string actual = file.metadata(key);
    MBMPO_CHECK_INPUT(actual == expected, path, ": ", key, " is ", actual, ", this ensemble has ", expected);
  };
  expect_meta("models", std::to_string(layout_.models()));
  expect_meta("obs_dim", std::to_string(obs_dim_));
  expect_meta("act_dim", std::to_string(act_dim_));
  expect_meta("hidden", hidden);
  expect_meta("activation", activation_name(config_.activation));

  const std::int64_t K = layout_.models();
  std::vector<float> params(static_cast<std::size_t>(layout_.parameter_count()));
  for (std::size_t l = 0; l < layout_.layers().size(); ++l) {
    const auto& layer = layout_.layers()[l];
    const std::string prefix = "layer" + std::to_string(l) + ".";
    auto place = [&](const std::vector<float>& values, std::int64_t offset) {
      std::copy(values.begin(), values.end(), params.begin() + offset);
    };
    place(file.f32(prefix + "v", {K, layer.out, layer.in}), layer.v_offset);
    place(file.f32(prefix + "g", {K, layer.out}), layer.g_offset);
    place(file.f32(prefix + "b", {K, layer.out}), layer.b_offset);
  }
  const int in = obs_dim_ + act_dim_;
  std::vector<float> norm;
  for (const auto& [name, size] : {std::pair<const char*, int>{"normalization.input_mean", in},
                                   {"normalization.input_std", in},
                                   {"normalization.delta_mean", obs_dim_},
                                   {"normalization.delta_std", obs_dim_}}) {
    const auto part = file.f32(name, {size});
    norm.insert(norm.end(), part.begin(), part.end());
  }
  for (float value : params) MBMPO_CHECK_INPUT(std::isfinite(value), path, ": non-finite weight");
  for (float value : norm) MBMPO_CHECK_INPUT(std::isfinite(value), path, ": non-finite normalisation statistic");
  for (const auto& [offset, count, name] :
       {std::tuple<int, int, const char*>{in, in, "normalization.input_std"}, {2 * in + obs_dim_, obs_dim_, "normalization.delta_std"}}) {
    for (int i = 0; i < count; ++i) {
      // A constant feature has std 0 (normalisation divides by std + eps); a negative one is damage.
      MBMPO_CHECK_INPUT(norm[std::size_t(offset + i)] >= 0.0f, path, ": ", name, "[", i, "] = ",
                        norm[std::size_t(offset + i)], " (a standard deviation must be >= 0)");
    }
  }
  const bool with_optimizer = file.has("adam.m");
  std::vector<float> adam_m, adam_v;
  std::vector<std::int64_t> adam_steps;
  std::int64_t fits_done = std::int64_t(fits_done_);
  if (with_optimizer) {
    adam_m = file.f32("adam.m", {layout_.parameter_count()});
    adam_v = file.f32("adam.v", {layout_.parameter_count()});
    adam_steps = file.i64("adam.steps", {K});
    fits_done = file.i64("fits_done", {1})[0];
    MBMPO_CHECK_INPUT(fits_done >= 0, path, ": negative fit count");
    for (float value : adam_m) MBMPO_CHECK_INPUT(std::isfinite(value), path, ": non-finite Adam moment in adam.m");
    for (float value : adam_v) {
      MBMPO_CHECK_INPUT(std::isfinite(value) && value >= 0.0f, path, ": Adam second moment ", value,
                        " in adam.v (it must be finite and >= 0)");
    }
    for (std::int64_t steps : adam_steps) MBMPO_CHECK_INPUT(steps >= 0, path, ": negative Adam step count in adam.steps");
  }
  // Everything read and checked: only now replace the state.
  if (with_optimizer) {
    adam_m_.copy_from_host(adam_m, &context_);
    adam_v_.copy_from_host(adam_v, &context_);
    adam_steps_ = adam_steps;
    fits_done_ = static_cast<std::uint64_t>(fits_done);
  }
  params_.copy_from_host(params, &context_);
  weights_current_ = false;
  normalization_.copy_from_host(norm, &context_);
}

}  // namespace mbmpo
