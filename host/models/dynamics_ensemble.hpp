// The learned dynamics: K MLPs predicting delta = s' - s from (s, a), fitted together and
// evaluated together on either backend (docs/algorithm.md, step 2, "Fit the ensemble"). This file
// and dynamics_ensemble.cpp: construction, weights, normalisation and prediction; the fit in
// dynamics_ensemble_fit.cpp, the model file in dynamics_ensemble_io.cpp; several seeds' ensembles
// as one in ensemble_stack.hpp.
//
// Inputs and targets are normalised with the dataset's statistics; the loss is the MSE in
// normalised-delta space; predictions are s' = s + delta clipped to +-next_obs_clip.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/core/context.hpp"
#include "host/core/tensor.hpp"
#include "host/data/dataset.hpp"
#include "host/models/ensemble_mlp_cpu.hpp"
#include "host/models/ensemble_linear.hpp"
#include "host/models/ensemble_mlp_layout.hpp"

namespace mbmpo {

struct DynamicsEnsembleConfig {
  int models = 5;
  std::vector<int> hidden = {512, 512};
  Activation activation = Activation::relu;
  double normalization_eps = 1e-10;
  double next_obs_clip = 1000.0;
  // CUDA: the layers' products on tensor cores in TF32 with FP32 accumulation (fit and predict);
  // its error against FP32 is bounded by tests (README). The CPU backend ignores it.
  bool tf32 = false;
};

struct ModelFitOptions {
  double learning_rate = 1e-3;
  int batch_size = 500;
  int max_epochs = 500;
  double validation_fraction = 0.2;
  // Early stopping (the authors' rule): avg <- p*avg + (1-p)*validation loss after each epoch; a
  // model stops when its average rises. Off: every model trains max_epochs.
  bool early_stopping = true;
  double rolling_average_persistency = 0.99;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  std::uint64_t seed = 0;
  int validation_chunk_rows = 8192;  // rows per model per validation forward pass (memory bound)
};

struct ModelFitReport {
  std::vector<int> epochs;                             // epochs each model trained
  std::vector<double> train_loss;                      // mean over each model's last epoch
  std::vector<double> validation_loss;                 // at each model's last trained epoch
  std::vector<std::vector<double>> validation_history;  // [epoch][model]
  int epochs_run = 0;
  std::int64_t train_rows = 0, validation_rows = 0;  // per model
  double flops = 0;  // counted: 2 per multiply-add of every GEMM of the fit
  double seconds = 0;
};

// Which rows of a predict call use which model: rows of model k are indices[k][r], padded
// with -1 to the largest group. Built once and reused (e.g. for every step of a rollout).
struct ModelAssignment {
  int models = 0, rows_per_model = 0;
  std::int64_t total_rows = 0;  // the predict call's row count; every row appears exactly once
  Tensor<std::int32_t> indices;  // [models][rows_per_model] on the ensemble's backend
};

// What a model file's metadata records of its ensemble (the sizes, models, hidden sizes,
// activation and normalisation epsilon), checked: mbmpo.DynamicsEnsemble.load makes the ensemble
// from it, then load() reads the weights. InputError naming the file and the field otherwise.
struct ModelFileArchitecture {
  int obs_dim = 0, act_dim = 0;
  DynamicsEnsembleConfig config;
};
ModelFileArchitecture read_model_file_architecture(const std::string& path);

class DynamicsEnsemble {
 public:
  // Xavier-uniform directions, gains 1, biases 0, drawn from Philox(init_seed) on the host so both
  // backends start from the same weights. Normalisation starts as the identity.
  DynamicsEnsemble(Context& context, int obs_dim, int act_dim, DynamicsEnsembleConfig config,
                   std::uint64_t init_seed);

  const EnsembleMlpLayout& layout() const { return layout_; }
  const DynamicsEnsembleConfig& config() const { return config_; }
  int obs_dim() const { return obs_dim_; }
  int act_dim() const { return act_dim_; }
  int models() const { return layout_.models(); }

  // Fits on the dataset with fresh per-model train/validation splits (warm start: parameters and
  // Adam state carry over from the previous fit). Sets the normalisation from the dataset first.
  ModelFitReport fit(const Dataset& data, const ModelFitOptions& options);

  // next_obs[r] = model[r](obs[r], act[r]); obs/next_obs [N][obs_dim], act [N][act_dim] on the
  // ensemble's backend.
  ModelAssignment assign(const std::vector<int>& model_of_row) const;
  void predict(TensorView<const float> obs, TensorView<const float> act,
               const ModelAssignment& assignment, TensorView<float> next_obs);
  // Rows [k*R, (k+1)*R) use model k. obs [K*R][obs_dim].
  ModelAssignment grouped_assignment(int rows_per_model) const;
  // Allocates predict's workspace for this assignment and brings the effective weights
  // (g v / ||v||, kept between calls) up to date now, so that later predict calls do neither: a
  // rollout computes the weights once, not at every step (and nothing allocates while a CUDA
  // graph records the steps).
  void prepare_predict(const ModelAssignment& assignment);

  // The ensemble's models come in seeds() equal blocks of models_per_seed() (1 block, all its
  // models, unless it is an EnsembleStack's): each block has its own normalisation, and each layer
  // call runs block by block as that block's own ensemble would (host/models/ensemble_stack.hpp).
  int seeds() const { return seeds_; }
  int models_per_seed() const { return layout_.models() / seeds_; }

  // Host copies of the state, for tests and checkpoints.
  std::vector<float> parameters() const { return params_.to_host(&context_); }
  void set_parameters(const std::vector<float>& values) {
    params_.copy_from_host(values, &context_);
    weights_current_ = false;
  }
  void set_normalization(const DatasetStats& stats);
  std::vector<float> normalization() const { return normalization_.to_host(&context_); }
  std::uint64_t fits_done() const { return fits_done_; }

  // .safetensors with tensors layer{l}.v/g/b ([K][out][in], [K][out]), normalization.* and, with
  // include_optimizer, adam.m/v/steps; metadata records the architecture. load() checks the file
  // against this ensemble's architecture and throws InputError naming any mismatch.
  void save(const std::string& path, bool include_optimizer) const;
  void load(const std::string& path);

 private:
  void run_predict(const float* obs, const float* act, const ModelAssignment& assignment,
                   float* next_obs);
  NormalizerView<float> normalizer_view() const;
  // Layer l's parameters of models [first, first + count) (count -1: to the last), with their
  // effective weights when `with_weights` (then they must be current).
  EnsembleLinearParams layer_params(std::size_t l, bool with_weights, int first = 0, int count = -1) const;
  void refresh_weights();  // W of every layer from params_: one launch per layer
  void check_fit_input(const Dataset& data, const ModelFitOptions& options) const;
  // The fit (host/models/dynamics_ensemble_fit.cpp) of the seeds_ blocks of models, block s on
  // datasets[s] with options[s] and fit number draws[s].
  std::vector<ModelFitReport> fit_seeds(const std::vector<const Dataset*>& datasets,
                                        const std::vector<ModelFitOptions>& options,
                                        const std::vector<std::uint64_t>& draws);
  // The statistics as the ensemble keeps them (one block): input mean (obs, act), input std, delta
  // mean, delta std, appended to `out`.
  static void append_normalization(const DatasetStats& stats, std::vector<float>& out);
  // Makes the models `seeds` blocks with a normalisation each (an EnsembleStack's ensemble).
  void split_into_seeds(int seeds);
  friend class EnsembleStack;  // moves its seeds' state into the blocks and back

  Context& context_;
  int obs_dim_, act_dim_;
  DynamicsEnsembleConfig config_;
  EnsembleMlpLayout layout_;
  Tensor<float> params_, grads_, adam_m_, adam_v_;
  std::vector<std::int64_t> adam_steps_;  // per model: Adam's bias correction uses its own count
  Tensor<float> normalization_;           // [input_mean | input_std | delta_mean | delta_std]
  // Effective weights of every layer ([K][out][in] each, back to back), valid while
  // weights_current_: recomputed once per minibatch in the fit and once per parameter change for
  // prediction, never per step.
  Tensor<float> weights_;
  std::vector<std::int64_t> weight_offsets_;
  bool weights_current_ = false;
  std::uint64_t fits_done_ = 0;
  int seeds_ = 1;
  // Predict workspace, grown on demand: two ping-pong activation buffers.
  Tensor<float> predict_a_, predict_b_;
};

}  // namespace mbmpo
