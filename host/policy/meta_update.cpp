#include "host/policy/meta_update.hpp"

#include <chrono>
#include <cmath>
#include <vector>

#include "host/core/nvtx.hpp"
#include "host/optim/conjugate_gradient.hpp"
#include "host/policy/meta_objective_cpu.hpp"

#ifdef MBMPO_WITH_CUDA
#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "kernels/core/broadcast_rows_cuda.hpp"
#include "kernels/policy/policy_ops_cuda.hpp"
#endif

namespace mbmpo {

void validate(const MetaUpdateOptions& o) {
  MBMPO_CHECK_INPUT(o.inner_lr >= 0 && std::isfinite(o.inner_lr), "inner_lr must be >= 0, got ", o.inner_lr);
  MBMPO_CHECK_INPUT(o.max_kl > 0 && std::isfinite(o.max_kl), "max_kl (the trust region) must be > 0, got ", o.max_kl);
  MBMPO_CHECK_INPUT(o.damping >= 0 && std::isfinite(o.damping), "cg_damping must be >= 0, got ", o.damping);
  MBMPO_CHECK_INPUT(o.cg_iterations >= 1, "cg_iterations must be >= 1, got ", o.cg_iterations);
  MBMPO_CHECK_INPUT(o.cg_residual_tolerance >= 0, "cg_residual_tolerance must be >= 0, got ",
                    o.cg_residual_tolerance);
  MBMPO_CHECK_INPUT(o.backtrack_ratio > 0 && o.backtrack_ratio < 1, "backtrack_ratio must be in (0, 1), got ",
                    o.backtrack_ratio);
  MBMPO_CHECK_INPUT(o.max_backtracks >= 1, "max_backtracks must be >= 1, got ", o.max_backtracks);
  MBMPO_CHECK_INPUT(o.fisher_subsample > 0 && o.fisher_subsample <= 1, "fisher_subsample must be in (0, 1], got ",
                    o.fisher_subsample);
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The dot product of rows g of two [B][n] matrices, summed over the row in order.
double dot(const std::vector<float>& a, const std::vector<float>& b, int g, std::int64_t n) {
  double sum = 0;
  for (std::int64_t i = g * n; i < (g + 1) * n; ++i) sum += double(a[i]) * double(b[i]);
  return sum;
}

// The meta-objective's operations on the context's backend, with their workspace; raw
// backend pointers. Parameters and vectors of the seeds are [B][P]; per-task ones [T][P].
class ObjectiveOps {
 public:
  // Workspace for T tasks in B seeds of `post_per_task` post-update samples and P parameters.
  ObjectiveOps(Context& context, const PolicyLayout& layout, int tasks, int seeds, std::int64_t pre_per_task,
               std::int64_t post_per_task)
      : context_(context), P_(layout.parameter_count()), seeds_(seeds) {
    const Backend backend = context.backend();
    const std::int64_t T = tasks, N = post_per_task;
    logp_old_ = Tensor<float>(backend, {T, N});
#ifdef MBMPO_WITH_CUDA
    if (backend == Backend::cuda) {
      theta_tiled_ = Tensor<float>(backend, {T, P_});
      tiled_ = Tensor<float>(backend, {T, P_});
      a_ = Tensor<float>(backend, {T, P_});
      b_ = Tensor<float>(backend, {T, P_});
      candidate_adapted_ = Tensor<float>(backend, {T, P_});
      logp_ = Tensor<float>(backend, {T, N});
      kl_ = Tensor<float>(backend, {T, N});
      terms_ = Tensor<double>(backend, {T, 2});
      // The CG graph records J v and F v: their scratch must exist before.
      const PolicyShape shape = policy_shape(layout);
      cuda::reserve_sample_sums(context.cuda(), shape, tasks, pre_per_task);
      cuda::reserve_sample_sums(context.cuda(), shape, tasks, post_per_task);
    }
#else
    (void)pre_per_task;
#endif
    post_count_host_.resize(std::size_t(T));
  }

  // The problem around theta_old [B][P] and the adapted parameters [T][P] the post-update samples
  // were drawn with (same sizes as the workspace).
  void bind(const MetaProblem<float>& problem, const float* theta_old, const float* adapted_old) {
    m_ = problem;
    theta_old_ = theta_old;
    adapted_old_ = adapted_old;
    const std::int64_t N = m_.post_per_task;
    if (context_.backend() == Backend::cpu) {
      cpu::log_probs(m_.shape, m_.tasks, N, adapted_old_, true, m_.post_obs, m_.post_act, logp_old_.data());
    }
#ifdef MBMPO_WITH_CUDA
    if (context_.backend() == Backend::cuda) {
      CudaResources& cuda = context_.cuda();
      // Every task's products read its seed's theta_old from its own row: the same launches for
      // any number of seeds.
      cuda::broadcast_rows(cuda, m_.tasks, seeds_, P_, theta_old_, theta_tiled_.data());
      cuda::log_probs(cuda, m_.shape, m_.tasks, seeds_, N, adapted_old_, true, m_.post_obs, m_.post_act,
                      logp_old_.data());
      memory::copy(Backend::cpu, post_count_host_.data(), Backend::cuda, m_.post_count,
                   m_.tasks * sizeof(float), &context_);
    }
#endif
    m_.post_logp_old = logp_old_.data();
  }

  // out[g] = A_g v[g] = (1/Tb) sum_{t in g} J_t F_t J_t v[g] + damping v[g]; v, out [B][P] on the backend.
  void curvature(const float* v, float* out, float damping) {
    if (context_.backend() == Backend::cpu) {
      cpu::curvature_vector(m_, theta_old_, adapted_old_, damping, v, out);
      return;
    }
#ifdef MBMPO_WITH_CUDA
    CudaResources& cuda = context_.cuda();
    cuda::broadcast_rows(cuda, m_.tasks, seeds_, P_, v, tiled_.data());
    const float* jv = jacobian(tiled_.data(), a_.data());
    cuda::fisher_vector_product(cuda, m_.shape, m_.tasks, seeds_, m_.post_per_task, adapted_old_, jv,
                                m_.post_obs, m_.fisher_weight, m_.fisher_count, b_.data());
    const float* jfjv = jacobian(b_.data(), a_.data());
    cuda::task_mean_plus(cuda, m_.tasks, int(P_), jfjv, damping, v, out, seeds_);
#endif
  }

  // out[g] = (1/Tb) sum_{t in g} J_t g_t, [B][P].
  void gradient(float* out) {
    if (context_.backend() == Backend::cpu) {
      cpu::meta_gradient(m_, theta_old_, adapted_old_, out);
      return;
    }
#ifdef MBMPO_WITH_CUDA
    CudaResources& cuda = context_.cuda();
    cuda::scaled_log_prob_gradient(cuda, m_.shape, m_.tasks, seeds_, m_.post_per_task, adapted_old_, true,
                                   m_.post_obs, m_.post_act, m_.post_advantage, m_.post_count, b_.data());
    const float* jg = jacobian(b_.data(), a_.data());
    cuda::task_mean_plus(cuda, m_.tasks, int(P_), jg, 0.f, nullptr, out, seeds_);
#endif
  }

  // Per seed, the surrogate and the mean KL of its tasks at a candidate theta [B][P] (on the backend).
  std::vector<cpu::SurrogateAndKl> evaluate(const float* theta) {
    if (context_.backend() == Backend::cpu) return cpu::surrogate_and_kl_per_seed(m_, theta, adapted_old_);
    std::vector<cpu::SurrogateAndKl> results(static_cast<std::size_t>(seeds_));
#ifdef MBMPO_WITH_CUDA
    CudaResources& cuda = context_.cuda();
    const std::int64_t N = m_.post_per_task;
    // Each seed's candidate tiled to its tasks, then the inner step in place.
    cuda::broadcast_rows(cuda, m_.tasks, seeds_, P_, theta, candidate_adapted_.data());
    cuda::policy_gradient_step(cuda, m_.shape, m_.tasks, seeds_, m_.pre_per_task, candidate_adapted_.data(), true,
                               m_.pre_obs, m_.pre_act, m_.pre_advantage, m_.pre_count, m_.alpha,
                               candidate_adapted_.data());
    cuda::log_probs(cuda, m_.shape, m_.tasks, seeds_, N, candidate_adapted_.data(), true, m_.post_obs,
                    m_.post_act, logp_.data());
    cuda::kl_divergences(cuda, m_.shape, m_.tasks, seeds_, N, adapted_old_, true, candidate_adapted_.data(), true,
                         m_.post_obs, kl_.data());
    cuda::surrogate_kl_terms(cuda, m_.tasks, N, m_.post_advantage, m_.post_valid, logp_.data(),
                             logp_old_.data(), kl_.data(), terms_.data());
    const std::vector<double> terms = terms_.to_host(&context_);
    const int per_seed = m_.tasks / seeds_;
    for (int t = 0; t < m_.tasks; ++t) {
      cpu::SurrogateAndKl& result = results[std::size_t(t / per_seed)];
      const double inverse = post_count_host_[t] > 0 ? 1.0 / post_count_host_[t] : 0.0;
      result.surrogate += terms[2 * t] * inverse;
      result.kl += terms[2 * t + 1] * inverse;
    }
    for (cpu::SurrogateAndKl& result : results) {
      result.surrogate /= per_seed;
      result.kl /= per_seed;
    }
#endif
    return results;
  }

  // candidate[g] = theta_old[g] + scale * x[g] (rows of [B][P] on the backend).
  void step(int g, const float* x, float scale, float* candidate) {
    const std::int64_t at = std::int64_t(g) * P_;
    if (context_.backend() == Backend::cpu) {
      for (std::int64_t p = 0; p < P_; ++p) candidate[at + p] = theta_old_[at + p] + scale * x[at + p];
      return;
    }
#ifdef MBMPO_WITH_CUDA
    CudaResources& cuda = context_.cuda();
    MBMPO_CUBLAS_CHECK(cublasScopy(cuda.cublas, int(P_), theta_old_ + at, 1, candidate + at, 1));
    MBMPO_CUBLAS_CHECK(cublasSaxpy(cuda.cublas, int(P_), &scale, x + at, 1, candidate + at, 1));
#endif
  }

 private:
#ifdef MBMPO_WITH_CUDA
  // J_t v_t for vectors [T][P] into out (or the vectors themselves when first order), at each
  // task's row of the tiled theta_old.
  const float* jacobian(const float* vectors, float* out) {
    if (m_.first_order) return vectors;
    cuda::jacobian_vector(context_.cuda(), m_.shape, m_.tasks, seeds_, m_.pre_per_task, theta_tiled_.data(), true,
                          vectors, m_.pre_obs, m_.pre_act, m_.pre_advantage, m_.pre_count, m_.alpha, out);
    return out;
  }
#endif

  Context& context_;
  MetaProblem<float> m_;
  const float* theta_old_ = nullptr;
  const float* adapted_old_ = nullptr;
  std::int64_t P_;
  int seeds_;
  Tensor<float> logp_old_, theta_tiled_, tiled_, a_, b_, candidate_adapted_, logp_, kl_;
  Tensor<double> terms_;
  std::vector<float> post_count_host_;
};

// B from a theta [P] (1) or [B][P].
int seeds_of(const TensorView<const float>& theta, std::int64_t P) {
  MBMPO_CHECK((theta.shape.size() == 1 && theta.dim(0) == P) || (theta.shape.size() == 2 && theta.dim(1) == P),
              "meta update theta: expected [", P, "] or [seeds, ", P, "], got ", shape_to_string(theta.shape));
  return theta.shape.size() == 2 ? int(theta.dim(0)) : 1;
}

// A view of B rows of P: [P] when B = 1, or [B][P].
template <class T>
void expect_seed_rows(const TensorView<T>& view, int seeds, std::int64_t P, Backend backend, const char* name) {
  if (seeds == 1 && view.shape.size() == 1) {
    expect_shape(view, {P}, backend, name);
  } else {
    expect_shape(view, {seeds, P}, backend, name);
  }
}

void check_samples(const Trajectories& samples, const Advantages& advantages, const PolicyLayout& layout,
                   int tasks, Backend backend, const char* name) {
  const RolloutDims& d = samples.dims;
  MBMPO_CHECK(d.tasks == tasks, "meta update: ", name, " samples have ", d.tasks, " tasks, expected ", tasks);
  MBMPO_CHECK(d.obs_dim == layout.obs_dim() && d.act_dim == layout.act_dim(), "meta update: ", name,
              " samples are ", d.obs_dim, "/", d.act_dim, " (obs/act), the policy ", layout.obs_dim(), "/",
              layout.act_dim());
  expect_shape(samples.obs.view(), {d.tasks, d.rollouts, d.horizon, d.obs_dim}, backend, name);
  expect_shape(advantages.advantages.view(), {d.tasks, d.rollouts, d.horizon}, backend, name);
  expect_shape(advantages.valid_count.view(), {d.tasks}, backend, name);
}

}  // namespace

struct MetaObjective::Impl {
  Impl(Context& c, const PolicyLayout& l, const MetaUpdateOptions& o, int tasks, int g, std::int64_t pre_per_task,
       std::int64_t post_per_task)
      : context(c),
        layout(l),
        options(o),
        P(l.parameter_count()),
        B(g),
        theta_old(c.backend(), {g, P}),
        gradient(c.backend(), {g, P}),
        direction(c.backend(), {g, P}),
        curvature(c.backend(), {g, P}),
        ops(c, l, tasks, g, pre_per_task, post_per_task),
        cg(c, g, P) {
    if (o.fisher_subsample < 1) {
      fisher_weight = Tensor<float>(c.backend(), {tasks, post_per_task});
      fisher_count = Tensor<float>(c.backend(), {tasks});
    }
  }
  Context& context;
  PolicyLayout layout;
  MetaUpdateOptions options;
  std::int64_t P;
  int B;
  RolloutDims pre_dims, post_dims;
  Tensor<float> theta_old, fisher_weight, fisher_count, gradient, direction, curvature;
  std::vector<float> fisher_weight_host, fisher_count_host;
  ObjectiveOps ops;
  ConjugateGradientSolver cg;

  void bind(TensorView<const float> theta, TensorView<const float> adapted, const Trajectories& pre,
            const Advantages& pre_advantages, const Trajectories& post, const Advantages& post_advantages,
            std::uint64_t draw);
};

void MetaObjective::Impl::bind(TensorView<const float> theta, TensorView<const float> adapted,
                               const Trajectories& pre, const Advantages& pre_advantages,
                               const Trajectories& post, const Advantages& post_advantages,
                               std::uint64_t draw) {
  const Backend backend = context.backend();
  const int T = pre.dims.tasks;
  MBMPO_CHECK(T > 0, "meta update: no tasks");
  expect_seed_rows(theta, B, P, backend, "meta update theta");
  expect_shape(adapted, {T, P}, backend, "meta update adapted parameters");
  check_samples(pre, pre_advantages, layout, T, backend, "pre-update");
  check_samples(post, post_advantages, layout, T, backend, "post-update");
  auto same = [](const RolloutDims& a, const RolloutDims& b) {
    return a.tasks == b.tasks && a.rollouts == b.rollouts && a.horizon == b.horizon;
  };
  MBMPO_CHECK(same(pre.dims, pre_dims) && same(post.dims, post_dims),
              "meta update: the samples have another shape than the meta-objective's workspace");
  options.draw = draw;

  MetaProblem<float> m;
  m.shape = policy_shape(layout);
  m.tasks = T;
  m.seeds = B;
  m.alpha = float(options.inner_lr);
  m.first_order = options.first_order;
  m.pre_per_task = std::int64_t(pre.dims.rollouts) * pre.dims.horizon;
  m.pre_obs = pre.obs.data();
  m.pre_act = pre.act.data();
  m.pre_advantage = pre_advantages.advantages.data();
  m.pre_count = pre_advantages.valid_count.data();
  m.post_per_task = std::int64_t(post.dims.rollouts) * post.dims.horizon;
  m.post_obs = post.obs.data();
  m.post_act = post.act.data();
  m.post_advantage = post_advantages.advantages.data();
  m.post_valid = post.valid.data();
  m.post_count = post_advantages.valid_count.data();
  m.fisher_weight = m.post_valid;
  m.fisher_count = m.post_count;

  // A subsample of the post-update states for the Fisher products: each valid state is kept with
  // probability fisher_subsample (Philox keyed by the seed's seed and draw and the state's index
  // within its seed, the same on both backends).
  if (options.fisher_subsample < 1) {
    fisher_weight_host = post.valid.to_host(&context);
    fisher_count_host.assign(std::size_t(T), 0.f);
    const std::int64_t per_seed = std::int64_t(T / B) * m.post_per_task;
    for (std::int64_t i = 0; i < std::int64_t(fisher_weight_host.size()); ++i) {
      float& weight = fisher_weight_host[i];
      if (weight == 0.f) continue;
      const std::int64_t g = i / per_seed;
      const std::uint64_t seed = options.seeds.empty() ? options.seed : options.seeds[std::size_t(g)];
      weight = uniform_at(seed, options.draw, std::uint64_t(i - g * per_seed)) < options.fisher_subsample ? 1.f : 0.f;
      fisher_count_host[i / m.post_per_task] += weight;
    }
    fisher_weight.copy_from_host(fisher_weight_host, &context);
    fisher_count.copy_from_host(fisher_count_host, &context);
    m.fisher_weight = fisher_weight.data();
    m.fisher_count = fisher_count.data();
  }
  theta_old.copy_elements_from(theta, &context);
  ops.bind(m, theta_old.data(), adapted.data);
}

MetaObjective::MetaObjective(Context& context, const PolicyLayout& layout, TensorView<const float> theta,
                             TensorView<const float> adapted, const Trajectories& pre,
                             const Advantages& pre_advantages, const Trajectories& post,
                             const Advantages& post_advantages, const MetaUpdateOptions& options) {
  validate(options);
  const int T = pre.dims.tasks;
  const int B = seeds_of(theta, layout.parameter_count());
  MBMPO_CHECK(B >= 1 && T % B == 0, "meta update: ", B, " seeds of meta-parameters do not split ", T,
              " tasks evenly");
  MBMPO_CHECK_INPUT(options.seeds.empty() || options.seeds.size() == std::size_t(B),
                    "seeds: ", options.seeds.size(), " seeds for ", B, " seeds");
  impl_ = std::make_unique<Impl>(context, layout, options, T, B, std::int64_t(pre.dims.rollouts) * pre.dims.horizon,
                                 std::int64_t(post.dims.rollouts) * post.dims.horizon);
  impl_->pre_dims = pre.dims;
  impl_->post_dims = post.dims;
  impl_->bind(theta, adapted, pre, pre_advantages, post, post_advantages, options.draw);
}

void MetaObjective::rebind(TensorView<const float> theta, TensorView<const float> adapted,
                           const Trajectories& pre, const Advantages& pre_advantages,
                           const Trajectories& post, const Advantages& post_advantages,
                           std::uint64_t draw) {
  impl_->bind(theta, adapted, pre, pre_advantages, post, post_advantages, draw);
}

MetaObjective::~MetaObjective() = default;

int MetaObjective::seeds() const { return impl_->B; }

void MetaObjective::gradient(TensorView<float> out) {
  expect_seed_rows(out, impl_->B, impl_->P, impl_->context.backend(), "meta gradient");
  impl_->ops.gradient(out.data);
}

void MetaObjective::curvature(TensorView<const float> v, TensorView<float> out) {
  expect_seed_rows(v, impl_->B, impl_->P, impl_->context.backend(), "curvature-vector input");
  expect_seed_rows(out, impl_->B, impl_->P, impl_->context.backend(), "curvature-vector output");
  impl_->ops.curvature(v.data, out.data, float(impl_->options.damping));
}

cpu::SurrogateAndKl MetaObjective::evaluate(TensorView<const float> theta) {
  MBMPO_CHECK(impl_->B == 1, "meta objective: evaluate is for one seed, this one has ", impl_->B,
              " (use evaluate_per_seed)");
  return evaluate_per_seed(theta)[0];
}

std::vector<cpu::SurrogateAndKl> MetaObjective::evaluate_per_seed(TensorView<const float> theta) {
  expect_seed_rows(theta, impl_->B, impl_->P, impl_->context.backend(), "meta objective theta");
  return impl_->ops.evaluate(theta.data);
}

MetaUpdateReport MetaObjective::update(TensorView<float> theta) {
  MBMPO_CHECK(impl_->B == 1, "meta update: update is for one seed, this objective has ", impl_->B,
              " (use update_per_seed)");
  return update_per_seed(theta)[0];
}

std::vector<MetaUpdateReport> MetaObjective::update_per_seed(TensorView<float> theta) {
  Context& context = impl_->context;
  const MetaUpdateOptions& options = impl_->options;
  ObjectiveOps& objective = impl_->ops;
  const Backend backend = context.backend();
  const std::int64_t P = impl_->P;
  const int B = impl_->B;
  expect_seed_rows(theta, B, P, backend, "meta update theta");
  const float* theta_old = impl_->theta_old.data();

  std::vector<MetaUpdateReport> reports(static_cast<std::size_t>(B));
  Tensor<float>& gradient = impl_->gradient;
  Tensor<float>& direction = impl_->direction;
  Tensor<float>& curvature = impl_->curvature;
  auto start = Clock::now();
  {
    MBMPO_NVTX_RANGE("meta_gradient");
    const std::vector<cpu::SurrogateAndKl> before = objective.evaluate(theta_old);
    for (int g = 0; g < B; ++g) reports[g].surrogate_before = before[g].surrogate;
    objective.gradient(gradient.data());
    context.synchronize();
  }
  const double seconds_meta_gradient = seconds_since(start);

  // One CG system per seed.
  start = Clock::now();
  ConjugateGradientOptions cg;
  cg.iterations = options.cg_iterations;
  cg.residual_tolerance = options.cg_residual_tolerance;
  cg.cuda_graph = options.cuda_graph;
  const float damping = float(options.damping);
  const ConjugateGradientReport solve = impl_->cg.solve(
      [&](const float* p, float* ap) { objective.curvature(p, ap, damping); }, gradient.view(),
      direction.view(), cg);
  objective.curvature(direction.data(), curvature.data(), damping);
  const std::vector<float> x = direction.to_host(&context), ax = curvature.to_host(&context);
  for (int g = 0; g < B; ++g) {
    MetaUpdateReport& report = reports[g];
    report.gradient_norm = solve.rhs_norm[g];
    report.cg_residual = solve.rhs_norm[g] > 0 ? solve.residual_norm[g] / solve.rhs_norm[g] : 0.0;
    report.step_scale = std::sqrt(2 * options.max_kl / (dot(x, ax, g, P) + 1e-8));
  }
  const double seconds_cg = seconds_since(start);

  // The seeds' backtracking line searches side by side: each round steps every seed still
  // searching to its next candidate (the others keep theta_old or their accepted candidate) and
  // evaluates all tasks at once; a seed's candidates and accept rule are those of a search alone.
  start = Clock::now();
  {
    MBMPO_NVTX_RANGE("line_search");
    // Device to device on the stream: ordered with the steps and evaluations, no host wait.
    memory::copy(backend, theta.data, backend, theta_old, std::size_t(B) * P * sizeof(float), &context);
    std::vector<char> searching(static_cast<std::size_t>(B));
    std::vector<double> fraction(static_cast<std::size_t>(B), 1.0);
    for (int g = 0; g < B; ++g) {
      MetaUpdateReport& report = reports[g];
      report.surrogate_after = report.surrogate_before;
      searching[g] = std::isfinite(report.step_scale) && report.gradient_norm > 0;
    }
    for (int k = 0; k < options.max_backtracks; ++k) {
      bool any = false;
      for (int g = 0; g < B; ++g) {
        if (!searching[g]) continue;
        any = true;
        reports[g].backtracks = k + 1;
        objective.step(g, direction.data(), float(fraction[g] * reports[g].step_scale), theta.data);
      }
      if (!any) break;
      const std::vector<cpu::SurrogateAndKl> values = objective.evaluate(theta.data);
      for (int g = 0; g < B; ++g) {
        if (!searching[g]) continue;
        MetaUpdateReport& report = reports[g];
        const cpu::SurrogateAndKl& value = values[g];
        if (std::isfinite(value.surrogate) && std::isfinite(value.kl) &&
            value.surrogate > report.surrogate_before && value.kl <= options.max_kl) {
          report.accepted = true;
          report.step_fraction = fraction[g];
          report.surrogate_after = value.surrogate;
          report.kl = value.kl;
          searching[g] = 0;
        } else {
          fraction[g] *= options.backtrack_ratio;
        }
      }
    }
    for (int g = 0; g < B; ++g) {
      if (reports[g].accepted) continue;
      memory::copy(backend, theta.data + std::int64_t(g) * P, backend, theta_old + std::int64_t(g) * P,
                   P * sizeof(float), &context);
    }
  }
  const double seconds_line_search = seconds_since(start);
  for (MetaUpdateReport& report : reports) {
    report.seconds_meta_gradient = seconds_meta_gradient;
    report.seconds_cg = seconds_cg;
    report.seconds_line_search = seconds_line_search;
  }
  return reports;
}

MetaUpdateReport meta_update(Context& context, const PolicyLayout& layout, TensorView<float> theta,
                             TensorView<const float> adapted, const Trajectories& pre,
                             const Advantages& pre_advantages, const Trajectories& post,
                             const Advantages& post_advantages, const MetaUpdateOptions& options) {
  MetaObjective objective(context, layout, theta, adapted, pre, pre_advantages, post, post_advantages, options);
  return objective.update(theta);
}

}  // namespace mbmpo
