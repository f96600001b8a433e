// Imagined rollouts and the inner step at the sizes of bench/peers/rollout_peer.py.
// Scales: small = 5 tasks x 8 rollouts x 20 steps, models (64, 64); paper = 20 x 50 x 200 (the
// paper's meta-batch), models (512, 512); large = also 5 tasks x 4096 rollouts x 200 (GPU only).
// Always K = 5 models, policy (32, 32), HalfCheetah's sizes and reward.
// meta_update: one outer TRPO step on pre/post sample sets of the same sizes, filled as in
// bench/peers/meta_update_peer.py (states U(-1, 1), actions N(0, 1), standardised advantages).
#include "bench/policy_bench.hpp"

#include "host/envs/environment.hpp"
#include "host/envs/sampler.hpp"
#include "host/envs/task.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/meta_update.hpp"
#include "host/train/seed_group.hpp"
#include "host/train/trainer.hpp"
#include "kernels/core/philox.cuh"

#include <cmath>
#include <chrono>
#include <filesystem>
#include <unistd.h>

namespace mbmpo::bench {
namespace {

struct RolloutScale {
  std::string name;
  RolloutDims dims;
};

std::vector<RolloutScale> rollout_scales(const std::string& scale, Backend backend) {
  const TaskSpec& task = task_spec("half_cheetah");
  if (scale == "small") return {{"5x8x20", {5, 8, 20, task.obs_dim, task.act_dim}}};
  std::vector<RolloutScale> scales = {{"20x50x200", {20, 50, 200, task.obs_dim, task.act_dim}}};
  if (scale == "large" && backend == Backend::cuda) scales.push_back({"5x4096x200", {5, 4096, 200, task.obs_dim, task.act_dim}});
  return scales;
}

struct Problem {
  DynamicsEnsemble models;
  PolicyLayout layout;
  Tensor<float> params, start, theta;
  Trajectories trajectories;
};

Problem make_problem(Context& context, const std::string& scale, const RolloutDims& d) {
  DynamicsEnsembleConfig config;
  config.models = 5;
  config.hidden = scale == "small" ? std::vector<int>{64, 64} : std::vector<int>{512, 512};
  DynamicsEnsemble models(context, d.obs_dim, d.act_dim, config, 1);
  PolicyLayout layout(d.obs_dim, d.act_dim, {32, 32});
  const std::vector<float> theta = initial_policy_parameters(layout, 2);
  std::vector<float> params;
  for (int t = 0; t < d.tasks; ++t) params.insert(params.end(), theta.begin(), theta.end());
  const auto start = sample_start_states(MujocoModel::load(task_spec("half_cheetah")), int(d.rows()), 3, 0);
  const Backend b = context.backend();
  return {std::move(models), layout,
          Tensor<float>::from_host(b, {d.tasks, layout.parameter_count()}, params),
          Tensor<float>::from_host(b, {d.tasks, d.rollouts, d.obs_dim}, start),
          Tensor<float>::from_host(b, {layout.parameter_count()}, theta), Trajectories(b, d)};
}


}  // namespace

std::vector<nlohmann::json> run_rollout_suite(Context& context, const std::string& scale,
                                              const Ceiling& ceiling) {
  std::vector<nlohmann::json> rows;
  for (const RolloutScale& s : rollout_scales(scale, context.backend())) {
    Problem p = make_problem(context, scale, s.dims);
    const double steps = double(s.dims.samples());
    const double flops = steps * 2.0 * double(p.models.layout().forward_macs_per_row() + p.layout.forward_macs());
    // Bytes: each step's state read and next state written, and the trajectory it records
    // (observation, action, reward, validity, log-prob); weights stay in cache across steps.
    const double bytes = steps * 4.0 * (3.0 * s.dims.obs_dim + s.dims.act_dim + 3.0);
    const int repeats = context.backend() == Backend::cpu ? 3 : 10;
    for (bool graph : {true, false}) {
      if (context.backend() == Backend::cpu && !graph) continue;  // the flag means nothing there
      RolloutOptions options;
      options.cuda_graph = graph;
      std::uint64_t draw = 0;
      ImaginedRollout runner(context, s.dims);  // kept between rollouts, as the trainer keeps it
      const Timing t = time_on(context, repeats, [&] {
        options.draw = draw++;
        runner.run(TaskId::half_cheetah, p.models, p.layout, p.params, p.start, options, p.trajectories);
      });
      const std::string name = s.name + (context.backend() == Backend::cuda ? (graph ? "/graph" : "/stream") : "");
      nlohmann::json r = row("rollout", name, device_label(context), scale, t, steps);
      r["items"] = "imagined steps";
      rows.push_back(with_cost(r, flops, bytes, ceiling));
    }
  }
  return rows;
}

std::vector<nlohmann::json> run_inner_step_suite(Context& context, const std::string& scale,
                                                 const Ceiling& ceiling) {
  std::vector<nlohmann::json> rows;
  for (const RolloutScale& s : rollout_scales(scale, context.backend())) {
    Problem p = make_problem(context, scale, s.dims);
    imagined_rollout(context, TaskId::half_cheetah, p.models, p.layout, p.params, p.start, {}, p.trajectories);
    Advantages advantages(context.backend(), s.dims);
    Tensor<float> adapted(context.backend(), {s.dims.tasks, p.layout.parameter_count()});
    const Timing t = time_on(context, context.backend() == Backend::cpu ? 3 : 20, [&] {
      compute_advantages(context, p.trajectories, {}, advantages);
      inner_step(context, p.layout, p.theta, p.trajectories, advantages, 1e-3, adapted);
    });
    const double samples = double(s.dims.samples());
    // Per sample: the policy forward and its backward (about twice the forward) in the gradient.
    const double flops = samples * 2.0 * 3.0 * double(p.layout.forward_macs());
    // Bytes: the samples (observation, action, reward, validity) read for the baseline, the
    // advantages and the gradient, and the advantages and returns written.
    const double bytes = samples * 4.0 * (s.dims.obs_dim + s.dims.act_dim + 4.0);
    nlohmann::json r = row("inner_step", s.name, device_label(context), scale, t, samples);
    r["items"] = "samples (advantages + inner step)";
    rows.push_back(with_cost(r, flops, bytes, ceiling));
  }
  return rows;
}

namespace {
// Pre/post samples with the peer's distributions; every step valid.
struct MetaSamples {
  Trajectories trajectories;
  Advantages advantages;
  MetaSamples(Backend backend, const RolloutDims& d, std::uint64_t seed)
      : trajectories(backend, d), advantages(backend, d) {
    const std::int64_t n = d.samples();
    std::vector<float> obs(n * d.obs_dim), act(n * d.act_dim), adv(n);
    for (std::int64_t i = 0; i < std::int64_t(obs.size()); ++i) obs[i] = 2 * uniform_at(seed, 0, i) - 1;
    for (std::int64_t i = 0; i < std::int64_t(act.size()); ++i) act[i] = normal_at(seed, 1, i);
    const std::int64_t per_task = std::int64_t(d.rollouts) * d.horizon;
    for (int t = 0; t < d.tasks; ++t) {  // standardised per task, as compute_advantages leaves them
      double sum = 0, sq = 0;
      for (std::int64_t k = 0; k < per_task; ++k) sum += adv[t * per_task + k] = normal_at(seed, 2, t * per_task + k);
      const double mean = sum / per_task;
      for (std::int64_t k = 0; k < per_task; ++k) sq += std::pow(adv[t * per_task + k] - mean, 2);
      const double sd = std::sqrt(sq / per_task);
      for (std::int64_t k = 0; k < per_task; ++k) adv[t * per_task + k] = float((adv[t * per_task + k] - mean) / sd);
    }
    trajectories.obs.copy_from_host(obs);
    trajectories.act.copy_from_host(act);
    trajectories.valid.copy_from_host(std::vector<float>(n, 1.f));
    advantages.advantages.copy_from_host(adv);
    advantages.valid_count.copy_from_host(std::vector<float>(d.tasks, float(per_task)));
  }
};
}  // namespace

std::vector<nlohmann::json> run_meta_update_suite(Context& context, const std::string& scale,
                                                  const Ceiling& ceiling) {
  std::vector<nlohmann::json> rows;
  const Backend backend = context.backend();
  for (const RolloutScale& s : rollout_scales(scale, backend)) {
    if (s.name != "20x50x200" && s.name != "5x8x20") continue;  // one policy batch per meta-step
    const RolloutDims& d = s.dims;
    const PolicyLayout layout(d.obs_dim, d.act_dim, {32, 32});
    const std::int64_t P = layout.parameter_count();
    const auto theta0 = Tensor<float>::from_host(backend, {P}, initial_policy_parameters(layout, 2));
    const MetaSamples pre(backend, d, 11), post(backend, d, 12);
    Tensor<float> adapted(backend, {d.tasks, P}), theta(backend, {P});
    inner_step(context, layout, theta0, pre.trajectories, pre.advantages, 1e-3, adapted);
    const double samples = double(d.samples());
    for (bool first_order : {false, true}) {
      MetaUpdateOptions options;
      options.first_order = first_order;
      std::vector<MetaUpdateReport> reports;
      const int repeats = backend == Backend::cpu ? (scale == "small" ? 5 : 1) : 10;
      const Timing t = time_on(context, repeats, [&] {
        theta.copy_from(theta0);
        reports.push_back(meta_update(context, layout, theta, adapted, pre.trajectories, pre.advantages,
                                      post.trajectories, post.advantages, options));
      });
      // Counted in policy-forward equivalents (F = 2 * MACs per sample): gradient = surrogate
      // (adapt 3F on pre + log-prob and KL 3F on post) + post gradient 3F + J (H v ~ 8F on pre);
      // each A v = 2 J (8F on pre) + Fisher (5F on post); 11 A v (10 CG + x.Ax); each line-search
      // candidate 6F. First order: no J. A model of the work, not a hardware count.
      const MetaUpdateReport& r = reports.back();
      const double hv = first_order ? 0.0 : 8.0;
      const double gradient_units = 3 + 3 + 3 + hv, cg_units = 11 * (2 * hv + 5), search_units = 6.0 * r.backtracks;
      const double flops_per_unit = samples * 2.0 * double(layout.forward_macs());
      // Bytes: one pass over one batch of samples (observation, action, advantage, validity) per
      // pass the update makes: gradient 4 (surrogate on pre and post, post gradient, J on pre),
      // each A v 3 (J, F, J; first order: F alone), each line-search candidate 2.
      const double pass_bytes = samples * 4.0 * (d.obs_dim + d.act_dim + 2.0);
      const double gradient_passes = first_order ? 3 : 4, av_passes = first_order ? 1 : 3;
      auto bytes_of = [&](double passes) { return passes * pass_bytes; };
      const std::string name = s.name + (first_order ? "-first-order" : "");
      nlohmann::json whole = row("meta_update", name, device_label(context), scale, t, 1.0);
      whole["items"] = "meta-updates";
      whole["backtracks"] = r.backtracks;
      whole["accepted"] = r.accepted;
      whole["kl"] = r.kl;
      const double search_passes = 2.0 * r.backtracks, cg_passes = 11 * av_passes;
      rows.push_back(with_cost(whole, (gradient_units + cg_units + search_units) * flops_per_unit,
                               bytes_of(gradient_passes + cg_passes + search_passes), ceiling));
      // The phases, as the update measured them (host clock after a synchronise), medians.
      auto phase = [&](const char* phase_name, double MetaUpdateReport::*field, double units, double passes) {
        std::vector<double> seconds;
        for (std::size_t i = 1; i < reports.size(); ++i) seconds.push_back(reports[i].*field);  // skip warm-up
        if (seconds.empty()) seconds.push_back(reports[0].*field);
        nlohmann::json p = row("meta_update", name + "-" + phase_name, device_label(context), scale,
                               summarize(seconds), 1.0);
        p["items"] = "phases";
        rows.push_back(with_cost(p, units * flops_per_unit, bytes_of(passes), ceiling));
      };
      phase("meta_gradient", &MetaUpdateReport::seconds_meta_gradient, gradient_units, gradient_passes);
      phase("cg", &MetaUpdateReport::seconds_cg, cg_units, cg_passes);
      phase("line_search", &MetaUpdateReport::seconds_line_search, search_units, search_passes);
    }
  }
  return rows;
}

std::vector<nlohmann::json> run_iteration_suite(Context& context, const std::string& scale) {
  // Two iterations of half_cheetah (the first also collects the random data); the second is the
  // steady-state iteration reported, with its phases. small: the smoke preset; paper/large: the
  // paper's defaults (hours on a CPU: meant for the GPU).
  TrainConfig config;
  config.env = "half_cheetah";
  if (scale == "small") apply_smoke_preset(config);
  config.iterations = 2;
  config.eval_episodes = 0;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("mbmpo-bench-iteration-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::vector<nlohmann::ordered_json> progress;
  {
    Trainer trainer(context, config, dir.string(), false);
    trainer.run([&](const nlohmann::ordered_json& r) { progress.push_back(r); });
  }
  std::filesystem::remove_all(dir);
  const nlohmann::ordered_json& last = progress.back();
  std::vector<nlohmann::json> rows;
  const std::string name = std::to_string(config.meta_batch) + "x" + std::to_string(config.rollouts_per_task) + "x" +
                           std::to_string(config.imagined_horizon) + "-" + std::to_string(config.meta_steps) + "steps";
  auto add = [&](const std::string& case_name, double seconds) {
    nlohmann::json r = row("iteration", case_name, device_label(context), scale, {seconds, seconds, seconds}, 1.0);
    r["items"] = "iterations (one timed run)";
    rows.push_back(r);
  };
  add(name, last["seconds_iteration"].get<double>());
  for (const auto& item : last.items()) {
    if (item.key().rfind("seconds_", 0) == 0 && item.key() != "seconds_iteration") {
      add(name + "-" + item.key().substr(8), item.value().get<double>());
    }
  }

  // The seeds axis: B seeds in one process (mbmpo train --seeds), the second iteration's
  // wall-clock divided by B: seconds per iteration per seed. At the paper's sizes a CPU would
  // take hours, so there it stays at B = 1 (the row above).
  const bool small_enough = scale == "small" || context.backend() == Backend::cuda;
  for (int seeds : small_enough ? std::vector<int>{1, 2, 4, 8} : std::vector<int>{}) {
    std::vector<std::uint64_t> list;
    for (int b = 0; b < seeds; ++b) list.push_back(std::uint64_t(b));
    std::filesystem::remove_all(dir);
    double round_start = 0, round_seconds = 0, batched_seconds = 0;
    const auto clock_s = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    };
    {
      SeedGroup group(context.backend(), config, list, dir.string(), false);
      int round = 0;
      round_start = clock_s();
      group.run([&](const std::vector<nlohmann::ordered_json>& round_rows) {
        const double now = clock_s();
        if (++round == 2) {
          round_seconds = now - round_start;
          // The meta-steps' phases run as one batch for all seeds: every row holds the batch's time.
          for (const char* phase : {"rollout_pre", "inner_step", "rollout_post", "meta_gradient", "cg", "line_search"}) {
            batched_seconds += round_rows.front()[std::string("seconds_") + phase].get<double>();
          }
        }
        round_start = now;
      });
    }
    std::filesystem::remove_all(dir);
    const std::string case_name = name + "-seeds" + std::to_string(seeds);
    nlohmann::json r = row("iteration", case_name, device_label(context), scale,
                           {round_seconds / seeds, round_seconds / seeds, round_seconds / seeds}, 1.0);
    r["items"] = "iterations per seed (one timed round of " + std::to_string(seeds) + " seeds)";
    r["seeds"] = seeds;
    rows.push_back(r);
    // The batched part alone (the meta-steps), per seed; the rest (real data, fits, checkpoints)
    // goes one seed after another.
    const double per_seed = batched_seconds / seeds;
    nlohmann::json m = row("iteration", case_name + "-meta_steps", device_label(context), scale,
                           {per_seed, per_seed, per_seed}, 1.0);
    m["items"] = "meta-steps of an iteration per seed (batched over " + std::to_string(seeds) + " seeds)";
    m["seeds"] = seeds;
    rows.push_back(m);
  }
  return rows;
}

}  // namespace mbmpo::bench
