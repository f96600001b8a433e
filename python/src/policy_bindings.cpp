// The policy side of a meta-step from Python: the Gaussian policy's layout and initial parameters,
// imagined rollouts through a DynamicsEnsemble, advantages, the inner step and the TRPO
// meta-update. They run in the ensemble's context; parameter and start-state arrays are used in
// place on its device (NumPy on the CPU, e.g. PyTorch tensors on CUDA), the meta-update writes
// theta in place, and trajectory fields come back as NumPy copies.
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <limits>
#include <mutex>

#include "host/core/error.hpp"
#include "host/envs/task.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/meta_update.hpp"
#include "host/core/memory.hpp"
#include "host/core/memory_budget.hpp"
#include "python/src/arguments.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace mbmpo::python {
namespace {

using namespace nb::literals;

// Trajectories of one rollout call, on the device that made them.
struct PyTrajectories {
  std::shared_ptr<Device> device;
  Trajectories samples;
};

// Advantages of one Trajectories object (kept alive with them: the calls below check that the two
// belong together).
struct PyAdvantages {
  std::shared_ptr<PyTrajectories> source;
  Advantages values;
};

// The policy must fit the samples; the advantages must be those of these samples.
void check_policy(const PolicyLayout& layout, const RolloutDims& d, const char* what) {
  MBMPO_CHECK_INPUT(layout.obs_dim() == d.obs_dim && layout.act_dim() == d.act_dim, "policy: it has obs/act sizes ",
                    layout.obs_dim(), "/", layout.act_dim(), " but the ", what, " have ", d.obs_dim, "/", d.act_dim);
}
void check_pair(const std::shared_ptr<PyTrajectories>& t, const PyAdvantages& a, const char* name) {
  MBMPO_CHECK_INPUT(a.source == t, name, ": these advantages were computed from other trajectories");
}

NumpyArray host_array(const Tensor<float>& tensor, const Shape& shape) { return to_numpy(tensor.to_host(), shape); }

Shape by_step(const RolloutDims& d, int width = 0) {
  Shape shape{d.tasks, d.rollouts, d.horizon};
  if (width > 0) shape.push_back(width);
  return shape;
}

std::shared_ptr<PyTrajectories> imagined_rollout_py(const Arg<Ensemble>& ensemble_arg, const Arg<std::string>& task,
                                                    const Arg<PolicyLayout>& policy, const Arg<InputArray>& params,
                                                    const Arg<InputArray>& start_obs,
                                                    const Arg<std::int64_t>& horizon_arg,
                                                    const Arg<std::uint64_t>& seed_arg,
                                                    const Arg<std::uint64_t>& draw_arg) {
  Ensemble& ensemble = instance(ensemble_arg, "ensemble", "mbmpo.DynamicsEnsemble");
  const TaskSpec& spec = task_spec(text(task, "task"));
  const PolicyLayout& layout = instance(policy, "policy", "mbmpo.GaussianPolicy");
  const int horizon = int(integer(horizon_arg, "horizon", 1, std::numeric_limits<int>::max()));
  const std::uint64_t rollout_seed = seed(seed_arg, "seed"), draw = seed(draw_arg, "draw");
  const Backend backend = ensemble.device()->context.backend();
  MBMPO_CHECK_INPUT(spec.obs_dim == ensemble.get().obs_dim() && spec.act_dim == ensemble.get().act_dim(),
                    "task ", spec.name, " has obs/act sizes ", spec.obs_dim, "/", spec.act_dim,
                    " but the ensemble was made for ", ensemble.get().obs_dim(), "/", ensemble.get().act_dim());
  MBMPO_CHECK_INPUT(layout.obs_dim() == spec.obs_dim && layout.act_dim() == spec.act_dim,
                    "policy: it has obs/act sizes ", layout.obs_dim(), "/", layout.act_dim(), " but task ", spec.name,
                    " has ", spec.obs_dim, "/", spec.act_dim);
  const TensorView<float> p = array_view(array(params, "params"), backend, {-1, layout.parameter_count()}, "params");
  const std::int64_t tasks = p.dim(0);
  MBMPO_CHECK_INPUT(tasks > 0, "params: expected one row per task, got none");
  const TensorView<float> start = array_view(array(start_obs, "start_obs"), backend, {tasks, -1, spec.obs_dim}, "start_obs");
  MBMPO_CHECK_INPUT(start.dim(1) > 0, "start_obs: expected at least one rollout per task, got none");
  check_finite(p, "params");
  check_finite(start, "start_obs");
  // The trajectories hold each step's observation, next observation, action, mean and a few scalars.
  check_memory(backend, double(tasks) * double(start.dim(1)) * horizon * (2.0 * spec.obs_dim + 2.0 * spec.act_dim + 8) * 4,
               "imagined_rollout of horizon " + std::to_string(horizon));
  const RolloutDims d{int(tasks), int(start.dim(1)), horizon, spec.obs_dim, spec.act_dim};
  auto out = std::make_shared<PyTrajectories>(PyTrajectories{ensemble.device(), Trajectories(backend, d)});
  RolloutOptions options;
  options.seed = rollout_seed;
  options.draw = draw;
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(ensemble.device()->mutex);
  imagined_rollout(ensemble.device()->context, spec.id, ensemble.get(), layout, p, start, options, out->samples);
  ensemble.device()->context.synchronize();
  return out;
}

// A Trajectories argument, shared (the advantages keep their trajectories alive).
std::shared_ptr<PyTrajectories> trajectories_of(const Arg<PyTrajectories>& arg, const char* name) {
  instance(arg, name, "mbmpo.Trajectories");
  return nb::cast<std::shared_ptr<PyTrajectories>>(arg.object);
}

std::shared_ptr<PyAdvantages> compute_advantages_py(const Arg<PyTrajectories>& trajectories,
                                                    const Arg<double>& discount_arg, const Arg<double>& gae_lambda_arg,
                                                    const Arg<bool>& normalize) {
  const std::shared_ptr<PyTrajectories> t = trajectories_of(trajectories, "trajectories");
  const double discount = real(discount_arg, "discount"), gae_lambda = real(gae_lambda_arg, "gae_lambda");
  AdvantageOptions options;
  options.discount = discount;
  options.gae_lambda = gae_lambda;
  options.normalize = flag(normalize, "normalize");
  MBMPO_CHECK_INPUT(discount >= 0 && discount <= 1, "discount must be in [0, 1], got ", discount);
  MBMPO_CHECK_INPUT(gae_lambda >= 0 && gae_lambda <= 1, "gae_lambda must be in [0, 1], got ", gae_lambda);
  Device& device = *t->device;
  auto out = std::make_shared<PyAdvantages>(PyAdvantages{t, Advantages(device.context.backend(), t->samples.dims)});
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(device.mutex);
  compute_advantages(device.context, t->samples, options, out->values);
  device.context.synchronize();
  return out;
}

// adapted[t] = theta + alpha * (policy gradient of task t): returned as a NumPy array.
NumpyArray inner_step_py(const Arg<PolicyLayout>& policy, const Arg<InputArray>& theta, const Arg<PyTrajectories>& trajectories,
                         const Arg<PyAdvantages>& advantages, const Arg<double>& inner_lr) {
  const PolicyLayout& layout = instance(policy, "policy", "mbmpo.GaussianPolicy");
  const std::shared_ptr<PyTrajectories> t = trajectories_of(trajectories, "trajectories");
  const PyAdvantages& a = instance(advantages, "advantages", "mbmpo.Advantages");
  const double alpha = real(inner_lr, "inner_lr");
  check_policy(layout, t->samples.dims, "trajectories");
  check_pair(t, a, "advantages");
  Device& device = *t->device;
  const Backend backend = device.context.backend();
  const std::int64_t tasks = t->samples.dims.tasks, P = layout.parameter_count();
  const TensorView<float> th = array_view(array(theta, "theta"), backend, {P}, "theta");
  check_finite(th, "theta");
  Tensor<float> adapted(backend, {tasks, P});
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(device.mutex);
    inner_step(device.context, layout, th, t->samples, a.values, alpha, adapted);
    device.context.synchronize();
  }
  return host_array(adapted, {tasks, P});
}

// One TRPO meta-update of theta, written in place; the report as a dict.
nb::dict meta_update_py(const Arg<PolicyLayout>& policy, nb::object theta, const Arg<InputArray>& adapted,
                        const Arg<PyTrajectories>& pre_arg, const Arg<PyAdvantages>& pre_advantages_arg,
                        const Arg<PyTrajectories>& post_arg, const Arg<PyAdvantages>& post_advantages_arg,
                        const Arg<double>& inner_lr, const Arg<double>& max_kl, const Arg<std::int64_t>& cg_iterations,
                        const Arg<double>& damping, const Arg<bool>& first_order) {
  const PolicyLayout& layout = instance(policy, "policy", "mbmpo.GaussianPolicy");
  const std::shared_ptr<PyTrajectories> pre = trajectories_of(pre_arg, "pre");
  const PyAdvantages& pre_advantages = instance(pre_advantages_arg, "pre_advantages", "mbmpo.Advantages");
  const std::shared_ptr<PyTrajectories> post = trajectories_of(post_arg, "post");
  const PyAdvantages& post_advantages = instance(post_advantages_arg, "post_advantages", "mbmpo.Advantages");
  MetaUpdateOptions options;
  options.inner_lr = real(inner_lr, "inner_lr");
  options.max_kl = real(max_kl, "max_kl");
  options.cg_iterations = int(integer(cg_iterations, "cg_iterations", 1, std::numeric_limits<int>::max()));
  options.damping = real(damping, "damping");
  options.first_order = flag(first_order, "first_order");
  MBMPO_CHECK_INPUT(post->device == pre->device, "post: these trajectories come from another ensemble than pre");
  check_policy(layout, pre->samples.dims, "pre trajectories");
  check_policy(layout, post->samples.dims, "post trajectories");
  MBMPO_CHECK_INPUT(pre->samples.dims.tasks == post->samples.dims.tasks, "post: ", post->samples.dims.tasks,
                    " tasks, but pre has ", pre->samples.dims.tasks);
  check_pair(pre, pre_advantages, "pre_advantages");
  check_pair(post, post_advantages, "post_advantages");
  Device& device = *pre->device;
  const Backend backend = device.context.backend();
  const std::int64_t P = layout.parameter_count();
  const TensorView<float> th = array_view(writable_array(theta, "theta"), backend, {P}, "theta");
  const TensorView<float> ad = array_view(array(adapted, "adapted"), backend, {pre->samples.dims.tasks, P}, "adapted");
  check_finite(th, "theta");
  check_finite(ad, "adapted");
  MBMPO_CHECK_INPUT(th.data + P <= ad.data || ad.data + ad.numel() <= th.data,
                    "theta: it overlaps adapted (give theta its own array)");
  validate(options);
  MetaUpdateReport r;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(device.mutex);
    // The objective keeps theta_old: a copy, since theta is written in place by the update.
    Tensor<float> theta_old(backend, {P});
    memory::copy(backend, theta_old.data(), backend, th.data, sizeof(float) * std::size_t(P), &device.context);
    MetaObjective objective(device.context, layout, theta_old, ad, pre->samples, pre_advantages.values,
                            post->samples, post_advantages.values, options);
    r = objective.update(th);
    device.context.synchronize();
  }
  nb::dict report;
  report["accepted"] = r.accepted;
  report["kl"] = r.kl;
  report["surrogate_before"] = r.surrogate_before;
  report["surrogate_after"] = r.surrogate_after;
  report["step_fraction"] = r.step_fraction;
  report["backtracks"] = r.backtracks;
  report["gradient_norm"] = r.gradient_norm;
  report["cg_residual"] = r.cg_residual;
  return report;
}

}  // namespace

void bind_policy(nb::module_& m) {
  nb::class_<PolicyLayout>(m, "GaussianPolicy",
                           "The layout of a Gaussian MLP policy: a tanh MLP of the hidden sizes gives the action's "
                           "mean, a state-independent log-std per action its spread. Its parameters are one float32 "
                           "vector theta [P]: per layer W [out, in] then b [out], the log-stds last; the calls "
                           "(imagined_rollout, inner_step, meta_update) take theta or one row per task [T, P].")
      .def(
          "__init__",
          [](PolicyLayout* l, const Arg<std::int64_t>& obs_dim, const Arg<std::int64_t>& act_dim,
             const Arg<std::vector<int>>& hidden) {
            const std::int64_t most = std::numeric_limits<int>::max();
            new (l) PolicyLayout(int(integer(obs_dim, "obs_dim", 1, most)), int(integer(act_dim, "act_dim", 1, most)),
                                 integers(hidden, "hidden", 1, int(most)));
          },
          nb::sig("def __init__(self, obs_dim: int, act_dim: int, hidden: collections.abc.Sequence[int] = [32, 32]) "
                  "-> None"),
          "obs_dim"_a.none(), "act_dim"_a.none(), "hidden"_a.none() = std::vector<int>{32, 32},
          "The layout of a Gaussian MLP policy (tanh hidden layers, a state-independent log-std).")
      .def_prop_ro("parameter_count", [](const PolicyLayout& l) { return l.parameter_count(); },
                   "P, the length of a parameter vector theta.")
      .def_prop_ro("obs_dim", &PolicyLayout::obs_dim, "The observation's size.")
      .def_prop_ro("act_dim", &PolicyLayout::act_dim, "The action's size.")
      .def(
          "initial_parameters",
          [](const PolicyLayout& l, const Arg<std::uint64_t>& seed_arg, const Arg<double>& init_std_arg) {
            const std::uint64_t s = seed(seed_arg, "seed");
            const double init_std = real(init_std_arg, "init_std");
            MBMPO_CHECK_INPUT(init_std > 0, "init_std must be > 0, got ", init_std);
            return to_numpy(initial_policy_parameters(l, s, init_std), {l.parameter_count()});
          },
          nb::sig("def initial_parameters(self, seed: int = 0, init_std: float = 1.0) -> numpy.typing.NDArray[numpy.float32]"),
          "seed"_a.none() = 0, "init_std"_a.none() = 1.0, "Xavier-uniform weights, zero biases, log-std = log(init_std).");

  // Fields as NumPy copies: [T][M][H] (and the width for obs and act).
  const auto field = [](Tensor<float> Trajectories::*member, bool per_dim, bool obs) {
    return [=](const PyTrajectories& t) {
      const RolloutDims& d = t.samples.dims;
      return host_array(t.samples.*member, by_step(d, per_dim ? (obs ? d.obs_dim : d.act_dim) : 0));
    };
  };
  nb::class_<PyTrajectories>(m, "Trajectories",
                              "Imagined rollouts of T tasks x M rollouts x H steps (what imagined_rollout returns), "
                              "kept on the ensemble's device; the fields are NumPy copies.")
      .def_prop_ro("obs", field(&Trajectories::obs, true, true), nb::rv_policy::automatic,
                   "The state each step acted in: [T, M, H, obs_dim] float32.")
      .def_prop_ro("act", field(&Trajectories::act, true, false), nb::rv_policy::automatic,
                   "The sampled actions (before clipping to the task's limit): [T, M, H, act_dim] float32.")
      .def_prop_ro("reward", field(&Trajectories::reward, false, false), nb::rv_policy::automatic,
                   "The task's reward of each step (0 after a trajectory ended): [T, M, H] float32.")
      .def_prop_ro("valid", field(&Trajectories::valid, false, false), nb::rv_policy::automatic,
                   "1 for the steps of a running trajectory, 0 after it ended: [T, M, H] float32.")
      .def_prop_ro("logp", field(&Trajectories::logp, false, false), nb::rv_policy::automatic,
                   "log pi(act | obs) of the policy that acted: [T, M, H] float32.");

  const auto values = [](Tensor<float> Advantages::*member) {
    return [=](const PyAdvantages& a) { return host_array(a.values.*member, (a.values.*member).shape()); };
  };
  nb::class_<PyAdvantages>(m, "Advantages",
                            "The advantages of one Trajectories object (what compute_advantages returns), kept with "
                            "them; the fields are NumPy copies.")
      .def_prop_ro("advantages", values(&Advantages::advantages), nb::rv_policy::automatic,
                   "GAE advantages (standardised per task when normalize): [T, M, H] float32, 0 on ended steps.")
      .def_prop_ro("returns", values(&Advantages::returns), nb::rv_policy::automatic,
                   "Discounted returns to go: [T, M, H] float32.")
      .def_prop_ro("valid_count", values(&Advantages::valid_count), nb::rv_policy::automatic,
                   "The number of valid steps of each task: [T] float32.");

  m.def("imagined_rollout", &imagined_rollout_py,
        nb::sig("def imagined_rollout(ensemble: DynamicsEnsemble, task: str, policy: GaussianPolicy, params: "
                "numpy.typing.NDArray[numpy.float32], start_obs: numpy.typing.NDArray[numpy.float32], horizon: int, seed: int = 0, draw: int = 0) "
                "-> Trajectories"),
        "ensemble"_a.none(), "task"_a.none(), "policy"_a.none(), "params"_a.none(), "start_obs"_a.none(),
        "horizon"_a.none(),
        "seed"_a.none() = 0, "draw"_a.none() = 0,
        "Rollouts of each task's policy params[t] from start_obs[t] through the ensemble (task t on model t mod K). "
        "NaN or infinite params or start_obs are refused (ValueError).");
  m.def("compute_advantages", &compute_advantages_py,
        nb::sig("def compute_advantages(trajectories: Trajectories, discount: float = 0.99, gae_lambda: float = 1.0, "
                "normalize: bool = True) -> Advantages"),
        "trajectories"_a.none(), "discount"_a.none() = 0.99, "gae_lambda"_a.none() = 1.0, "normalize"_a.none() = true,
        "GAE advantages and discounted returns of the trajectories (standardised per task over its valid samples when `normalize`).");
  m.def("inner_step", &inner_step_py,
        nb::sig("def inner_step(policy: GaussianPolicy, theta: numpy.typing.NDArray[numpy.float32], trajectories: Trajectories, "
                "advantages: Advantages, inner_lr: float) -> numpy.typing.NDArray[numpy.float32]"),
        "policy"_a.none(), "theta"_a.none(), "trajectories"_a.none(), "advantages"_a.none(), "inner_lr"_a.none(),
        "adapted[t] = theta + inner_lr * (task t's vanilla policy gradient): one row per task.");
  m.def("meta_update", &meta_update_py,
        nb::sig("def meta_update(policy: GaussianPolicy, theta: numpy.typing.NDArray[numpy.float32], adapted: "
                "numpy.typing.NDArray[numpy.float32], pre: Trajectories, pre_advantages: Advantages, post: Trajectories, "
                "post_advantages: Advantages, inner_lr: float, max_kl: float = 0.01, cg_iterations: int = 10, "
                "damping: float = 1e-05, first_order: bool = False) -> dict[str, typing.Any]"),
        "policy"_a.none(), "theta"_a.none(), "adapted"_a.none(), "pre"_a.none(), "pre_advantages"_a.none(), "post"_a.none(),
        "post_advantages"_a.none(), "inner_lr"_a.none(), "max_kl"_a.none() = 0.01, "cg_iterations"_a.none() = 10,
        "damping"_a.none() = 1e-5, "first_order"_a.none() = false,
        "One TRPO step of theta (written in place) on the post-update surrogate through the inner step; the report "
        "as a dict.");
}

}  // namespace mbmpo::python
