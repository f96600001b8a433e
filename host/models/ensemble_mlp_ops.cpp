#include "host/models/ensemble_mlp_ops.hpp"

#ifdef MBMPO_WITH_CUDA
#include "kernels/models/ensemble_mlp_cuda.hpp"
#endif

namespace mbmpo {

void gather_normalize(Context& c, const GatherDims& d, const float* obs, const float* act,
                      const float* delta, const std::int32_t* indices,
                      const NormalizerView<float>& norm, float* x, float* target) {
  if (c.backend() == Backend::cpu) return cpu::gather_normalize(d, obs, act, delta, indices, norm, x, target);
#ifdef MBMPO_WITH_CUDA
  cuda::gather_normalize(c.cuda(), d, obs, act, delta, indices, norm, x, target);
#endif
}

void mse_loss_grad(Context& c, int models, int rows, int dim, const float* y, const float* target,
                   float* dy, float* loss_sum) {
  if (c.backend() == Backend::cpu) return cpu::mse_loss_grad(models, rows, dim, y, target, dy, loss_sum);
#ifdef MBMPO_WITH_CUDA
  cuda::mse_loss_grad(c.cuda(), models, rows, dim, y, target, dy, loss_sum);
#endif
}

void denormalize_scatter(Context& c, const GatherDims& d, const float* y, const float* bias,
                         const float* obs, const std::int32_t* indices,
                         const NormalizerView<float>& norm, float clip, float* next_obs) {
  if (c.backend() == Backend::cpu) return cpu::denormalize_scatter(d, y, bias, obs, indices, norm, clip, next_obs);
#ifdef MBMPO_WITH_CUDA
  cuda::denormalize_scatter(c.cuda(), d, y, bias, obs, indices, norm, clip, next_obs);
#endif
}

void adam_update(Context& c, std::int64_t count, const AdamStep& step, float* params,
                 const float* grads, float* m, float* v) {
  if (c.backend() == Backend::cpu) return cpu::adam_update(count, step, params, grads, m, v);
#ifdef MBMPO_WITH_CUDA
  cuda::adam_update(c.cuda(), count, step, params, grads, m, v);
#endif
}

void shuffle_indices(Context& c, int models, std::int64_t count, const ShuffleKeys& keys,
                     std::uint64_t epoch, const std::int32_t* in, std::int32_t* out) {
  if (c.backend() == Backend::cpu) return cpu::shuffle_indices(models, count, keys, epoch, in, out);
#ifdef MBMPO_WITH_CUDA
  cuda::shuffle_indices(c.cuda(), models, count, keys, epoch, in, out);
#endif
}

}  // namespace mbmpo
