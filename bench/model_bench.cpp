// Dynamics-ensemble throughput: fitting (sample-passes per second: rows x models x epochs) and
// predicting (rows per second), at the sizes of bench/peers/ensemble_peer.py.
//
// Scales: small = K 5, hidden (64, 64), 2,000 transitions; paper = K 5, hidden (512, 512),
// 100,000 transitions (the dataset's capacity), predict batches of 1,000 rows (one step of the
// paper's 20 x 50 imagined rollouts) and 100,000 rows; large = paper plus 1,000,000 predict rows.
// Dimensions are HalfCheetah's (17 + 6 -> 17).
#include "bench/model_bench.hpp"

#include "host/core/tensor.hpp"
#include "host/data/dataset.hpp"
#include "host/models/dynamics_ensemble.hpp"
#include "kernels/core/philox.cuh"

namespace mbmpo::bench {
namespace {

constexpr int kObs = 17, kAct = 6, kModels = 5;

DynamicsEnsembleConfig config_for(const std::string& scale) {
  DynamicsEnsembleConfig config;
  config.models = kModels;
  config.hidden = scale == "small" ? std::vector<int>{64, 64} : std::vector<int>{512, 512};
  return config;
}

std::vector<float> uniform(std::size_t n, std::uint64_t stream) {
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = 2.f * uniform_at(11, stream, i) - 1.f;
  return values;
}

Dataset synthetic_dataset(int transitions) {
  Dataset data(kObs, kAct, transitions);
  Episode e;
  e.obs_dim = kObs;
  e.act_dim = kAct;
  e.length = transitions;
  e.obs = uniform(std::size_t(transitions) * kObs, 1);
  e.act = uniform(std::size_t(transitions) * kAct, 2);
  e.next_obs = uniform(std::size_t(transitions) * kObs, 3);
  e.reward.assign(transitions, 0.f);
  e.done.assign(transitions, 0);
  data.add(e);
  return data;
}


}  // namespace

std::vector<nlohmann::json> run_model_fit_suite(Context& context, const std::string& scale,
                                                const Ceiling& ceiling) {
  const bool small = scale == "small";
  const bool cpu = context.backend() == Backend::cpu;
  const int transitions = small ? 2000 : 100000;
  const Dataset data = synthetic_dataset(transitions);
  DynamicsEnsemble ensemble(context, kObs, kAct, config_for(scale), 1);
  ModelFitOptions options;
  options.max_epochs = 2;
  options.early_stopping = false;
  ModelFitReport report;
  const Timing t = time_on(context, small || cpu ? 2 : 5, [&] { report = ensemble.fit(data, options); });
  const double passes = double(report.train_rows) * kModels * options.max_epochs;
  nlohmann::json r = row("model_fit", "fit_2_epochs_" + std::to_string(transitions), device_label(context),
                         scale, t, passes);
  r["items"] = "sample-passes (training rows x models x epochs)";
  // Bytes: every minibatch step reads and writes the parameters, gradients and Adam moments
  // (4 reads + 3 writes of 4 bytes per parameter), and each epoch reads each model's training and
  // validation rows (inputs and targets) once.
  const auto& layout = ensemble.layout();
  const double steps = double(options.max_epochs) * std::ceil(double(report.train_rows) / options.batch_size);
  const double row_bytes = 4.0 * (layout.input_dim() + kObs);
  const double bytes = steps * 28.0 * double(layout.parameter_count()) +
                       double(options.max_epochs) * kModels * double(report.train_rows + report.validation_rows) * row_bytes;
  return {with_cost(r, report.flops, bytes, ceiling)};
}

std::vector<nlohmann::json> run_predict_suite(Context& context, const std::string& scale,
                                              const Ceiling& ceiling) {
  const bool small = scale == "small";
  std::vector<int> batches = small ? std::vector<int>{1000} : std::vector<int>{1000, 100000};
  if (scale == "large") batches.push_back(1000000);
  DynamicsEnsemble ensemble(context, kObs, kAct, config_for(scale), 1);
  std::vector<nlohmann::json> rows;
  for (int n : batches) {
    if (context.backend() == Backend::cpu && n > 100000) continue;  // minutes on a CPU
    const auto obs = Tensor<float>::from_host(context.backend(), {n, kObs}, uniform(std::size_t(n) * kObs, 4));
    const auto act = Tensor<float>::from_host(context.backend(), {n, kAct}, uniform(std::size_t(n) * kAct, 5));
    Tensor<float> next(context.backend(), {n, kObs});
    const ModelAssignment assignment = ensemble.grouped_assignment((n + kModels - 1) / kModels);
    const int repeats = small ? 3 : (context.backend() == Backend::cpu ? 3 : 20);
    const Timing t = time_on(context, repeats, [&] { ensemble.predict(obs, act, assignment, next); });
    const double flops = 2.0 * double(ensemble.layout().forward_macs_per_row()) * n;
    // Bytes: the rows' observations and actions in, next observations out, the weights once.
    const double bytes = 4.0 * (double(n) * (2 * kObs + kAct) + double(ensemble.layout().parameter_count()));
    nlohmann::json r = row("predict", "rows_" + std::to_string(n), device_label(context), scale, t, n);
    r["items"] = "rows";
    rows.push_back(with_cost(r, flops, bytes, ceiling));
  }
  return rows;
}

}  // namespace mbmpo::bench
