// The policy side of a meta-step from Python: the Gaussian policy's layout and initial parameters,
// imagined rollouts through a DynamicsEnsemble, advantages, the inner step and the TRPO
// meta-update. They run in the ensemble's context; parameter and start-state arrays are used in
// place on its device (NumPy on the CPU, e.g. PyTorch tensors on CUDA), the meta-update writes
// theta in place, and trajectory fields come back as NumPy copies.
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "host/core/error.hpp"
#include "host/envs/task.hpp"
#include "host/policy/advantages.hpp"
#include "host/policy/gaussian_policy.hpp"
#include "host/policy/imagined_rollout.hpp"
#include "host/policy/inner_step.hpp"
#include "host/policy/meta_update.hpp"
#include "host/core/memory.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace mbmpo::python {
namespace {

using namespace nb::literals;

// Trajectories of one rollout call, in the context (and on the device) that made them.
struct PyTrajectories {
  std::shared_ptr<Context> context;
  Trajectories samples;
};

struct PyAdvantages {
  std::shared_ptr<Context> context;
  Advantages values;
};

NumpyArray host_array(const Tensor<float>& tensor, const Shape& shape) { return to_numpy(tensor.to_host(), shape); }

Shape by_step(const RolloutDims& d, int width = 0) {
  Shape shape{d.tasks, d.rollouts, d.horizon};
  if (width > 0) shape.push_back(width);
  return shape;
}

std::shared_ptr<PyTrajectories> imagined_rollout_py(Ensemble& ensemble, const std::string& task,
                                                    const PolicyLayout& layout, const nb::ndarray<>& params,
                                                    const nb::ndarray<>& start_obs, int horizon, std::uint64_t seed,
                                                    std::uint64_t draw) {
  const TaskSpec& spec = task_spec(task);
  const Backend backend = ensemble.context()->backend();
  MBMPO_CHECK_INPUT(horizon > 0, "horizon must be > 0, got ", horizon);
  MBMPO_CHECK_INPUT(spec.obs_dim == ensemble.get().obs_dim() && spec.act_dim == ensemble.get().act_dim(),
                    "task ", spec.name, " has obs/act sizes ", spec.obs_dim, "/", spec.act_dim,
                    " but the ensemble was made for ", ensemble.get().obs_dim(), "/", ensemble.get().act_dim());
  const TensorView<float> p = array_view(params, backend, {-1, layout.parameter_count()}, "params");
  const std::int64_t tasks = p.dim(0);
  const TensorView<float> start = array_view(start_obs, backend, {tasks, -1, spec.obs_dim}, "start_obs");
  const RolloutDims d{int(tasks), int(start.dim(1)), horizon, spec.obs_dim, spec.act_dim};
  auto out = std::make_shared<PyTrajectories>(PyTrajectories{ensemble.context(), Trajectories(backend, d)});
  RolloutOptions options;
  options.seed = seed;
  options.draw = draw;
  {
    nb::gil_scoped_release release;
    imagined_rollout(*ensemble.context(), spec.id, ensemble.get(), layout, p, start, options, out->samples);
    ensemble.context()->synchronize();
  }
  return out;
}

std::shared_ptr<PyAdvantages> compute_advantages_py(const PyTrajectories& t, double discount, double gae_lambda,
                                                    bool normalize) {
  AdvantageOptions options;
  options.discount = discount;
  options.gae_lambda = gae_lambda;
  options.normalize = normalize;
  MBMPO_CHECK_INPUT(discount >= 0 && discount <= 1, "discount must be in [0, 1], got ", discount);
  MBMPO_CHECK_INPUT(gae_lambda >= 0 && gae_lambda <= 1, "gae_lambda must be in [0, 1], got ", gae_lambda);
  auto out = std::make_shared<PyAdvantages>(PyAdvantages{t.context, Advantages(t.context->backend(), t.samples.dims)});
  nb::gil_scoped_release release;
  compute_advantages(*t.context, t.samples, options, out->values);
  t.context->synchronize();
  return out;
}

// adapted[t] = theta + alpha * (policy gradient of task t): returned as a NumPy array.
NumpyArray inner_step_py(const PolicyLayout& layout, const nb::ndarray<>& theta, const PyTrajectories& t,
                         const PyAdvantages& a, double alpha) {
  const Backend backend = t.context->backend();
  const TensorView<float> th = array_view(theta, backend, {layout.parameter_count()}, "theta");
  Tensor<float> adapted(backend, {t.samples.dims.tasks, layout.parameter_count()});
  {
    nb::gil_scoped_release release;
    inner_step(*t.context, layout, th, t.samples, a.values, alpha, adapted);
    t.context->synchronize();
  }
  return host_array(adapted, {t.samples.dims.tasks, layout.parameter_count()});
}

// One TRPO meta-update of theta, written in place; the report as a dict.
nb::dict meta_update_py(const PolicyLayout& layout, const nb::ndarray<>& theta, const nb::ndarray<>& adapted,
                        const PyTrajectories& pre, const PyAdvantages& pre_advantages, const PyTrajectories& post,
                        const PyAdvantages& post_advantages, double inner_lr, double max_kl, int cg_iterations,
                        double damping, bool first_order) {
  const Backend backend = pre.context->backend();
  MBMPO_CHECK_INPUT(post.context == pre.context, "pre and post trajectories come from different ensembles");
  const TensorView<float> th = array_view(theta, backend, {layout.parameter_count()}, "theta");
  const TensorView<float> ad =
      array_view(adapted, backend, {pre.samples.dims.tasks, layout.parameter_count()}, "adapted");
  MetaUpdateOptions options;
  options.inner_lr = inner_lr;
  options.max_kl = max_kl;
  options.cg_iterations = cg_iterations;
  options.damping = damping;
  options.first_order = first_order;
  validate(options);
  MetaUpdateReport r;
  {
    nb::gil_scoped_release release;
    // The objective keeps theta_old: a copy, since theta is written in place by the update.
    Tensor<float> theta_old(backend, {layout.parameter_count()});
    memory::copy(backend, theta_old.data(), backend, th.data, sizeof(float) * std::size_t(th.numel()));
    MetaObjective objective(*pre.context, layout, theta_old, ad, pre.samples, pre_advantages.values, post.samples,
                            post_advantages.values, options);
    r = objective.update(th);
    pre.context->synchronize();
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
  nb::class_<PolicyLayout>(m, "GaussianPolicy")
      .def(nb::init<int, int, const std::vector<int>&>(), "obs_dim"_a, "act_dim"_a,
           "hidden"_a = std::vector<int>{32, 32})
      .def_prop_ro("parameter_count", [](const PolicyLayout& l) { return l.parameter_count(); })
      .def_prop_ro("obs_dim", &PolicyLayout::obs_dim)
      .def_prop_ro("act_dim", &PolicyLayout::act_dim)
      .def(
          "initial_parameters",
          [](const PolicyLayout& l, std::uint64_t seed, double init_std) {
            MBMPO_CHECK_INPUT(init_std > 0, "init_std must be > 0, got ", init_std);
            return to_numpy(initial_policy_parameters(l, seed, init_std), {l.parameter_count()});
          },
          "seed"_a = 0, "init_std"_a = 1.0, "Xavier-uniform weights, zero biases, log-std = log(init_std).");

  // Fields as NumPy copies: [T][M][H] (and the width for obs and act).
  const auto field = [](Tensor<float> Trajectories::*member, bool per_dim, bool obs) {
    return [=](const PyTrajectories& t) {
      const RolloutDims& d = t.samples.dims;
      return host_array(t.samples.*member, by_step(d, per_dim ? (obs ? d.obs_dim : d.act_dim) : 0));
    };
  };
  nb::class_<PyTrajectories>(m, "Trajectories")
      .def_prop_ro("obs", field(&Trajectories::obs, true, true), nb::rv_policy::move)
      .def_prop_ro("act", field(&Trajectories::act, true, false), nb::rv_policy::move)
      .def_prop_ro("reward", field(&Trajectories::reward, false, false), nb::rv_policy::move)
      .def_prop_ro("valid", field(&Trajectories::valid, false, false), nb::rv_policy::move)
      .def_prop_ro("logp", field(&Trajectories::logp, false, false), nb::rv_policy::move);

  const auto values = [](Tensor<float> Advantages::*member) {
    return [=](const PyAdvantages& a) { return host_array(a.values.*member, (a.values.*member).shape()); };
  };
  nb::class_<PyAdvantages>(m, "Advantages")
      .def_prop_ro("advantages", values(&Advantages::advantages), nb::rv_policy::move)
      .def_prop_ro("returns", values(&Advantages::returns), nb::rv_policy::move)
      .def_prop_ro("valid_count", values(&Advantages::valid_count), nb::rv_policy::move);

  m.def("imagined_rollout", &imagined_rollout_py, "ensemble"_a, "task"_a, "policy"_a, "params"_a, "start_obs"_a,
        "horizon"_a, "seed"_a = 0, "draw"_a = 0,
        "Rollouts of each task's policy params[t] from start_obs[t] through the ensemble (task t on model t mod K).");
  m.def("compute_advantages", &compute_advantages_py, "trajectories"_a, "discount"_a = 0.99, "gae_lambda"_a = 1.0,
        "normalize"_a = true);
  m.def("inner_step", &inner_step_py, "policy"_a, "theta"_a, "trajectories"_a, "advantages"_a, "inner_lr"_a);
  m.def("meta_update", &meta_update_py, "policy"_a, "theta"_a, "adapted"_a, "pre"_a, "pre_advantages"_a, "post"_a,
        "post_advantages"_a, "inner_lr"_a, "max_kl"_a = 0.01, "cg_iterations"_a = 10, "damping"_a = 1e-5,
        "first_order"_a = false);
}

}  // namespace mbmpo::python
