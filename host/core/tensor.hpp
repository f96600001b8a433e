// Tensors: a shape plus memory on one backend. Tensor<T> owns its memory (RAII, move-only);
// TensorView<T> is a non-owning window (e.g. one layer's weights inside a flat parameter vector)
// and is what numeric operations take, so callers can pass either.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/core/memory.hpp"

namespace mbmpo {

using Shape = std::vector<std::int64_t>;

std::string shape_to_string(const Shape& shape);
std::int64_t shape_numel(const Shape& shape);  // throws on a negative extent

template <class T>
struct TensorView {
  Backend backend = Backend::cpu;
  T* data = nullptr;
  Shape shape;

  std::int64_t numel() const { return shape_numel(shape); }
  std::int64_t dim(std::size_t axis) const { return shape.at(axis); }
  // A view of immutable elements converts implicitly.
  operator TensorView<const T>() const { return {backend, data, shape}; }
};

// Throws mbmpo::Error "NAME: expected shape [..] on BACKEND, got [..] on BACKEND".
template <class T>
void expect_shape(const TensorView<T>& view, const Shape& expected, Backend backend,
                  const char* name) {
  MBMPO_CHECK(view.shape == expected && view.backend == backend, name, ": expected shape ",
              shape_to_string(expected), " on ", to_string(backend), ", got ",
              shape_to_string(view.shape), " on ", to_string(view.backend));
  MBMPO_CHECK(view.data != nullptr || view.numel() == 0, name, ": null data for shape ",
              shape_to_string(view.shape));
}

template <class T>
class Tensor {
 public:
  Tensor() = default;
  Tensor(Backend backend, Shape shape)
      : backend_(backend), shape_(std::move(shape)), numel_(shape_numel(shape_)) {
    data_ = static_cast<T*>(memory::allocate(backend_, bytes()));
  }
  // The copies and fills below take the context whose stream orders them (memory::copy); without
  // one they use the legacy default stream.
  static Tensor from_host(Backend backend, Shape shape, const std::vector<T>& values, Context* order = nullptr) {
    Tensor tensor(backend, std::move(shape));
    tensor.copy_from_host(values, order);
    return tensor;
  }
  ~Tensor() { memory::release(backend_, data_); }

  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  Tensor(Tensor&& other) noexcept { swap(other); }
  Tensor& operator=(Tensor&& other) noexcept {
    Tensor moved(std::move(other));
    swap(moved);
    return *this;
  }

  Backend backend() const { return backend_; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim(std::size_t axis) const { return shape_.at(axis); }
  std::int64_t numel() const { return numel_; }
  std::size_t bytes() const { return static_cast<std::size_t>(numel_) * sizeof(T); }
  T* data() { return data_; }
  const T* data() const { return data_; }

  TensorView<T> view() { return {backend_, data_, shape_}; }
  TensorView<const T> view() const { return {backend_, data_, shape_}; }
  operator TensorView<T>() { return view(); }
  operator TensorView<const T>() const { return view(); }

  void copy_from_host(const std::vector<T>& values, Context* order = nullptr) {
    MBMPO_CHECK(static_cast<std::int64_t>(values.size()) == numel_, "copy_from_host: ",
                values.size(), " values for a tensor of shape ", shape_to_string(shape_));
    memory::copy(backend_, data_, Backend::cpu, values.data(), bytes(), order);
  }
  std::vector<T> to_host(Context* order = nullptr) const {
    std::vector<T> values(static_cast<std::size_t>(numel_));
    memory::copy(Backend::cpu, values.data(), backend_, data_, bytes(), order);
    return values;
  }
  void copy_from(const Tensor& other, Context* order = nullptr) {
    MBMPO_CHECK(other.shape_ == shape_, "copy_from: shape ", shape_to_string(other.shape_),
                " into ", shape_to_string(shape_));
    memory::copy(backend_, data_, other.backend_, other.data_, bytes(), order);
  }
  // Copies the elements of a view of the same element count (the shape may differ).
  void copy_elements_from(const TensorView<const T>& other, Context* order = nullptr) {
    MBMPO_CHECK(other.numel() == numel_, "copy_elements_from: ", shape_to_string(other.shape),
                " into ", shape_to_string(shape_));
    memory::copy(backend_, data_, other.backend, other.data, bytes(), order);
  }
  void fill_zero(Context* order = nullptr) { memory::set_bytes(backend_, data_, 0, bytes(), order); }
  // All bits set: a NaN for float and double. Tests poison outputs so unwritten elements show.
  void poison(Context* order = nullptr) { memory::set_bytes(backend_, data_, 0xFF, bytes(), order); }

 private:
  void swap(Tensor& other) noexcept {
    std::swap(backend_, other.backend_);
    std::swap(shape_, other.shape_);
    std::swap(numel_, other.numel_);
    std::swap(data_, other.data_);
  }

  Backend backend_ = Backend::cpu;
  Shape shape_;
  std::int64_t numel_ = 0;
  T* data_ = nullptr;
};

}  // namespace mbmpo
