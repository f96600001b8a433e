// Real-environment throughput: the sampler (lockstep batches, 1 and 2 threads) against a bare
// mj_step loop on the same model, in the same run.
#include <mujoco/mujoco.h>

#include "bench/bench_record.hpp"
#include "bench/env_bench.hpp"
#include "host/envs/sampler.hpp"
#include "kernels/core/philox.cuh"

namespace mbmpo::bench {

std::vector<nlohmann::json> run_env_suite(const std::string& scale) {
  const bool small = scale == "small";
  const int episodes = small ? 4 : 20, horizon = small ? 50 : 200, repeats = small ? 2 : 5;
  std::vector<nlohmann::json> rows;
  for (const char* name : {"half_cheetah", "hopper", "ant"}) {
    const TaskSpec& task = task_spec(name);
    auto model = MujocoModel::load(task);
    const double steps = double(episodes) * horizon;

    // Bare loop: one mjData, the same kind of uniformly random controls (drawn beforehand),
    // frame_skip mj_step calls per environment step; no observations, rewards or bookkeeping.
    mjData* data = mj_makeData(model->get());
    std::vector<double> controls(static_cast<std::size_t>(horizon) * task.act_dim);
    for (std::size_t i = 0; i < controls.size(); ++i)
      controls[i] = task.action_limit * (2.0 * uniform_at(3, 0, i) - 1.0);
    const Timing bare = time_host(repeats, [&] {
      for (int e = 0; e < episodes; ++e) {
        mj_resetData(model->get(), data);
        for (int t = 0; t < horizon; ++t) {
          for (int j = 0; j < task.act_dim; ++j) data->ctrl[j] = controls[t * task.act_dim + j];
          for (int f = 0; f < task.frame_skip; ++f) mj_step(model->get(), data);
        }
      }
    });
    mj_deleteData(data);
    nlohmann::json bare_row = row("env", std::string(name) + "/mj_step_loop", "cpu", scale, bare, steps);
    rows.push_back(bare_row);

    for (int threads : {1, 2}) {
      Sampler sampler(model);
      SamplerOptions options;
      options.episodes = episodes, options.horizon = horizon, options.threads = threads;
      // Hopper and ant terminate early under random actions: count the steps actually taken.
      double taken = 0;
      const Timing t = time_host(repeats, [&] {
        taken = 0;
        for (const Episode& e : sampler.run(options, uniform_random_policy(1, task.action_limit))) taken += e.length;
      });
      nlohmann::json r = row("env", std::string(name) + "/sampler_threads" + std::to_string(threads), "cpu", scale, t, taken);
      r["ratio_vs_mj_step_loop"] = r["items_per_s"].get<double>() / bare_row["items_per_s"].get<double>();
      rows.push_back(r);
    }
  }
  return rows;
}

}  // namespace mbmpo::bench
