// The parts of the extension mbmpo._core, one file each (module.cpp puts them together).
#pragma once

#include <nanobind/nanobind.h>

#include <memory>
#include <string>
#include <vector>

#include "host/core/context.hpp"
#include "host/models/dynamics_ensemble.hpp"

namespace mbmpo::python {

namespace nb = nanobind;

void bind_env(nb::module_& m);     // Env
void bind_models(nb::module_& m);  // Dataset, DynamicsEnsemble
void bind_policy(nb::module_& m);  // GaussianPolicy, Trajectories, Advantages and the meta-step's calls

// A dynamics ensemble with the context (backend, CUDA stream) it lives in; the policy calls run
// in the same context.
class Ensemble {
 public:
  Ensemble(int obs_dim, int act_dim, int models, std::vector<int> hidden, const std::string& activation,
           std::uint64_t seed, const std::string& device);
  DynamicsEnsemble& get() { return ensemble_; }
  const DynamicsEnsemble& get() const { return ensemble_; }
  const std::shared_ptr<Context>& context() const { return context_; }

 private:
  std::shared_ptr<Context> context_;  // before the ensemble, which keeps a reference to it
  DynamicsEnsemble ensemble_;
};

}  // namespace mbmpo::python
