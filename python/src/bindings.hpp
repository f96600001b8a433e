// The parts of the extension mbmpo._core, one file each (module.cpp puts them together).
#pragma once

#include <nanobind/nanobind.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "host/core/context.hpp"
#include "host/models/dynamics_ensemble.hpp"

namespace mbmpo::python {

namespace nb = nanobind;

void bind_env(nb::module_& m);     // Env
void bind_models(nb::module_& m);  // Dataset, DynamicsEnsemble
void bind_policy(nb::module_& m);  // GaussianPolicy, Trajectories, Advantages and the meta-step's calls
void bind_trained_policy(nb::module_& m);  // Policy
void bind_model_env(nb::module_& m);       // model_step, task_rewards (mbmpo.ModelEnv's)

// A context (backend, CUDA stream, cuBLAS handle) and the lock that keeps two Python threads from
// using it, and the objects that live in it, at once. Calls release the GIL first and then take
// the lock, so the two are never waited for in opposite orders.
struct Device {
  explicit Device(Backend backend) : context(backend) {}
  Context context;
  std::mutex mutex;
};

// A dynamics ensemble on its device; the policy calls run on the same one.
class Ensemble {
 public:
  Ensemble(int obs_dim, int act_dim, int models, std::vector<int> hidden, const std::string& activation,
           std::uint64_t seed, const std::string& device);
  // The architecture a model file records (its weights are read by DynamicsEnsemble::load after).
  Ensemble(const ModelFileArchitecture& architecture, const std::string& device);
  DynamicsEnsemble& get() { return ensemble_; }
  const DynamicsEnsemble& get() const { return ensemble_; }
  const std::shared_ptr<Device>& device() const { return device_; }

 private:
  std::shared_ptr<Device> device_;  // before the ensemble, which keeps a reference to its context
  DynamicsEnsemble ensemble_;
};

}  // namespace mbmpo::python
