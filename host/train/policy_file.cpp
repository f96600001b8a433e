#include "host/train/policy_file.hpp"

#include <cmath>
#include <sstream>

#include "host/core/error.hpp"
#include "host/core/sizes_text.hpp"
#include "host/envs/task.hpp"
#include "host/train/train_fields.hpp"
#include "kernels/policy/gaussian_policy.cuh"

namespace mbmpo {
namespace {

constexpr const char* kFormat = "mbmpo.policy.v2";

// torch.nn.Sequential(Linear(17, 64), Tanh(), ..., Linear(64, 6)): what the tensors' names index.
std::string architecture(const PolicyLayout& layout) {
  std::ostringstream text;
  text << "torch.nn.Sequential(";
  for (std::size_t l = 0; l < layout.layers().size(); ++l) {
    const PolicyLayer& layer = layout.layers()[l];
    text << (l ? ", Tanh(), " : "") << "Linear(" << layer.in << ", " << layer.out << ")";
  }
  text << ") gives the mean";
  return text.str();
}

void check_finite(const std::vector<float>& values, const std::string& source, const std::string& tensor) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    MBMPO_CHECK_INPUT(std::isfinite(values[i]), source, ": ", tensor, "[", i, "] is ", values[i],
                      " (the file is damaged or the run diverged)");
  }
}

}  // namespace

std::vector<PolicyTensor> policy_tensors(const PolicyLayout& layout) {
  std::vector<PolicyTensor> tensors;
  for (std::size_t l = 0; l < layout.layers().size(); ++l) {
    const PolicyLayer& layer = layout.layers()[l];
    const std::string index = std::to_string(2 * l);  // a Tanh() sits between two Linear layers
    tensors.push_back({index + ".weight", {layer.out, layer.in}, layer.w_offset, std::int64_t(layer.out) * layer.in});
    tensors.push_back({index + ".bias", {layer.out}, layer.b_offset, layer.out});
  }
  tensors.push_back({"log_std", {layout.act_dim()}, layout.log_std_offset(), layout.act_dim()});
  return tensors;
}

void save_policy_file(const std::string& path, const TrainConfig& config, const std::vector<float>& theta) {
  const PolicyLayout layout = policy_layout(config);
  MBMPO_CHECK(std::int64_t(theta.size()) == layout.parameter_count(), "policy file: theta has ", theta.size(),
              " values, the policy ", layout.parameter_count());
  Safetensors file;
  for (const PolicyTensor& t : policy_tensors(layout)) {
    file.put_f32(t.name, t.shape, std::vector<float>(theta.begin() + t.offset, theta.begin() + t.offset + t.count));
  }
  std::ostringstream action;
  action << "Normal(mean, exp(max(log_std, " << kMinLogStd << "))), clipped by the environment to +-"
         << task_spec(config.env).action_limit;
  file.set_metadata("format", kFormat);
  file.set_metadata("env", config.env);
  file.set_metadata("obs_dim", std::to_string(layout.obs_dim()));
  file.set_metadata("act_dim", std::to_string(layout.act_dim()));
  file.set_metadata("hidden", join_sizes(layout.hidden()));
  file.set_metadata("activation", "tanh");
  file.set_metadata("architecture", architecture(layout));
  file.set_metadata("action", action.str());
  file.set_metadata("config", config_to_json(config).dump());
  file.save(path);
}

TrainConfig policy_file_config(const Safetensors& file, const std::string& source) {
  MBMPO_CHECK_INPUT(file.all_metadata().count("config") != 0, source,
                    ": not an mbmpo policy file (it has no config metadata)");
  TrainConfig config;
  try {
    config = config_from_json(nlohmann::json::parse(file.metadata("config")));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(source + ": the policy file's config metadata is not valid JSON (" + e.what() + ")");
  }
  try {
    validate(config);
  } catch (const InputError& e) {
    throw InputError(source + ": its configuration is refused: " + e.what());
  }
  return config;
}

std::vector<float> policy_file_theta(const Safetensors& file, const std::string& source, const TrainConfig& config) {
  // The task the file says it was trained on is the one its configuration names.
  if (file.all_metadata().count("env") != 0) {
    MBMPO_CHECK_INPUT(file.metadata("env") == config.env, source, ": its env metadata '", file.metadata("env"),
                      "' is not its configuration's task '", config.env, "'");
  }
  if (file.all_metadata().count("format") != 0) {
    MBMPO_CHECK_INPUT(file.metadata("format") == kFormat, source, ": policy file format '", file.metadata("format"),
                      "' is not one this build reads (", kFormat, ")");
  }
  const PolicyLayout layout = policy_layout(config);
  if (file.has("theta")) {  // the first format (no format metadata), and checkpoints
    std::vector<float> theta = file.f32("theta", {layout.parameter_count()});
    check_finite(theta, source, "theta");
    return theta;
  }
  std::vector<float> theta(std::size_t(layout.parameter_count()));
  for (const PolicyTensor& t : policy_tensors(layout)) {
    const std::vector<float> values = file.f32(t.name, t.shape);
    check_finite(values, source, t.name);
    std::copy(values.begin(), values.end(), theta.begin() + t.offset);
  }
  return theta;
}

}  // namespace mbmpo
