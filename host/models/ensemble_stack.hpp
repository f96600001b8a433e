// Several seeds' ensembles of one architecture as one ensemble (`mbmpo train --seeds`), so that
// every seed's models run in the same layer calls: seed s's K models become models [s K, (s + 1) K)
// of the stack's ensemble, with their own normalisation. Each model is evaluated, and fitted,
// exactly as its own ensemble would do it (the same weights and statistics, bit for bit; on CUDA
// each seed's block is its own cuBLAS call, kernels/core/seed_gemm.cu).
//
// A wrapper in the manner of tiny-cuda-nn's optimizers/batched.h: the seeds' DynamicsEnsembles
// stay what they are (each is saved, loaded and fitted alone as in a single run) and know nothing
// of the stack; the stack copies their state in before it works and, after a fit, back out. Its
// own ensemble is never saved or loaded.
#pragma once

#include <vector>

#include "host/core/context.hpp"
#include "host/data/dataset.hpp"
#include "host/models/dynamics_ensemble.hpp"

namespace mbmpo {

class EnsembleStack {
 public:
  // Room for `seeds` ensembles made with `config` (config.models models each).
  EnsembleStack(Context& context, int obs_dim, int act_dim, const DynamicsEnsembleConfig& config, int seeds);

  int seeds() const { return stacked_.seeds(); }
  // The stacked ensemble, for prediction (an imagined rollout of every seed's tasks at once).
  DynamicsEnsemble& ensemble() { return stacked_; }

  // Takes each seed's parameters, effective weights and normalisation (its Adam state too): call
  // after the seeds' own ensembles changed. Allocates nothing.
  void gather(const std::vector<DynamicsEnsemble*>& seeds);

  // Whether fit can fit these: two or more seeds, at most kMaxEnsembleModels models in all, and
  // options equal but for the seed.
  static bool can_fit(const std::vector<DynamicsEnsemble*>& seeds, const std::vector<const Dataset*>& data,
                      const std::vector<ModelFitOptions>& options);
  // Fits every seed's ensemble on its own data as one fit (the same layer calls), and leaves each
  // exactly as its own fit(data[s], options[s]) would (parameters, Adam state, fit counter, report;
  // report.seconds is the whole fit's). Then the stack holds the fitted models too.
  std::vector<ModelFitReport> fit(const std::vector<DynamicsEnsemble*>& seeds,
                                  const std::vector<const Dataset*>& data,
                                  const std::vector<ModelFitOptions>& options);

 private:
  // Each seed's state into its block of the stack, or back out of it.
  void exchange(const std::vector<DynamicsEnsemble*>& seeds, bool into_stack);

  Context& context_;
  DynamicsEnsemble stacked_;
};

}  // namespace mbmpo
