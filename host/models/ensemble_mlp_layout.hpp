// Where each layer's parameters live inside the ensemble MLP's one flat parameter vector.
//
// The vector is layer-major: for every layer l, v_l [K][out][in], then g_l [K][out], then
// b_l [K][out]. Each piece is contiguous over all K models, so one layer call (and one launch on
// CUDA) covers every model; the optimiser walks the whole vector in one pass and finds an
// element's model from its piece ("segment").
#pragma once

#include <cstdint>
#include <vector>

#include "host/core/error.hpp"
#include "kernels/core/activation.cuh"

namespace mbmpo {

struct EnsembleMlpLayer {
  int in = 0, out = 0;
  Activation activation = Activation::identity;
  std::int64_t v_offset = 0, g_offset = 0, b_offset = 0;
};

// A contiguous run of parameters holding `per_model` elements for each of the K models in turn.
struct ParameterSegment {
  std::int64_t offset = 0, per_model = 0;
};

class EnsembleMlpLayout {
 public:
  EnsembleMlpLayout() = default;
  // hidden layers use `hidden_activation`; the output layer is linear.
  EnsembleMlpLayout(int models, int input_dim, const std::vector<int>& hidden, int output_dim,
                    Activation hidden_activation)
      : models_(models), input_dim_(input_dim), output_dim_(output_dim), hidden_(hidden) {
    MBMPO_CHECK_INPUT(models > 0, "ensemble: the number of models must be positive, got ", models);
    MBMPO_CHECK_INPUT(input_dim > 0 && output_dim > 0,
                      "ensemble: input and output sizes must be positive, got ", input_dim, " and ",
                      output_dim);
    int in = input_dim;
    std::int64_t offset = 0;
    for (std::size_t l = 0; l <= hidden.size(); ++l) {
      const bool last = l == hidden.size();
      const int out = last ? output_dim : hidden[l];
      MBMPO_CHECK_INPUT(out > 0, "ensemble: hidden layer sizes must be positive, got ", out);
      EnsembleMlpLayer layer;
      layer.in = in;
      layer.out = out;
      layer.activation = last ? Activation::identity : hidden_activation;
      layer.v_offset = offset;
      offset += std::int64_t(models) * out * in;
      layer.g_offset = offset;
      offset += std::int64_t(models) * out;
      layer.b_offset = offset;
      offset += std::int64_t(models) * out;
      layers_.push_back(layer);
      segments_.push_back({layer.v_offset, std::int64_t(out) * in});
      segments_.push_back({layer.g_offset, out});
      segments_.push_back({layer.b_offset, out});
      in = out;
    }
    parameter_count_ = offset;
  }

  int models() const { return models_; }
  int input_dim() const { return input_dim_; }
  int output_dim() const { return output_dim_; }
  const std::vector<int>& hidden() const { return hidden_; }
  const std::vector<EnsembleMlpLayer>& layers() const { return layers_; }
  const std::vector<ParameterSegment>& segments() const { return segments_; }
  std::int64_t parameter_count() const { return parameter_count_; }
  std::int64_t parameters_per_model() const { return parameter_count_ / models_; }
  int widest() const {
    int w = input_dim_;
    for (const auto& layer : layers_) w = layer.out > w ? layer.out : w;
    return w;
  }
  // Multiply-adds of one forward pass of one row through one model.
  std::int64_t forward_macs_per_row() const {
    std::int64_t macs = 0;
    for (const auto& layer : layers_) macs += std::int64_t(layer.in) * layer.out;
    return macs;
  }

 private:
  int models_ = 0, input_dim_ = 0, output_dim_ = 0;
  std::vector<int> hidden_;
  std::vector<EnsembleMlpLayer> layers_;
  std::vector<ParameterSegment> segments_;
  std::int64_t parameter_count_ = 0;
};

}  // namespace mbmpo
