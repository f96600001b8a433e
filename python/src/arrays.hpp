// How arrays cross between Python and the library: NumPy arrays (and, on CUDA, any DLPack array
// such as a PyTorch tensor) are seen in place as TensorViews after their dtype, shape, device and
// layout are checked; results come back as NumPy arrays that own their memory. Inputs that are
// only read are taken read-only (InputArray), so read-only and memory-mapped arrays are accepted;
// arrays written in place are checked to be writable (writable_array).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/error.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo::python {

namespace nb = nanobind;
using NumpyArray = nb::ndarray<nb::numpy, float>;
using InputArray = nb::ndarray<nb::ro>;
using OutputArray = nb::ndarray<>;

// A NumPy array of `shape` that owns `values` (freed when Python drops the array).
NumpyArray to_numpy(std::vector<float> values, const Shape& shape);

// The checks of array_view on the array's facts; InputError (Python: ValueError) naming `name`.
struct ArrayFacts {
  bool on_cpu, on_cuda, is_float32;
  int device_id;  // of a CUDA array: which GPU holds it
  std::vector<std::int64_t> shape, strides;  // strides in elements
  void* data;
};
TensorView<float> checked_view(const ArrayFacts& facts, Backend backend, const Shape& shape, const char* name);

// The array seen in place: float32, C-contiguous, `shape` (-1: any size on that axis), in the
// memory of `backend` (on CUDA: on the device in use). A CUDA array may have been written on
// another library's stream (a PyTorch side stream): nanobind asks `__dlpack__` for no stream, so
// the view waits for all work on the device before the library reads it.
template <class Array>
TensorView<float> array_view(const Array& array, Backend backend, const Shape& shape, const char* name) {
  ArrayFacts facts{array.device_type() == nb::device::cpu::value,
                   array.device_type() == nb::device::cuda::value,
                   array.dtype() == nb::dtype<float>(),
                   int(array.device_id()),
                   {},
                   {},
                   const_cast<void*>(static_cast<const void*>(array.data()))};
  for (std::size_t i = 0; i < array.ndim(); ++i) {
    facts.shape.push_back(std::int64_t(array.shape(i)));
    facts.strides.push_back(std::int64_t(array.stride(i)));
  }
  return checked_view(facts, backend, shape, name);
}

// An array the library writes into: ValueError naming `name` when it is read-only or not an array.
OutputArray writable_array(nb::handle object, const char* name);

// Where a call writes its result: the caller's `out` seen in place as `shape`, or, when `out` is
// None on the CPU, a new zeroed NumPy array, which `out` then holds (the call returns it). On
// CUDA the caller must give `out`; the error shows `cuda_example` (e.g. "torch.empty_like(obs)").
TensorView<float> output_view(nb::object& out, Backend backend, const Shape& shape, const char* cuda_example);

// ValueError naming `name` when the view holds a NaN or an infinity. A CUDA view is copied to the
// host to be read: meant for parameters and start states, which are small next to the work done
// with them.
void check_finite(const TensorView<float>& view, const char* name);

// A host copy of a float32 array of `shape` (-1: any); NaN and infinities are refused.
std::vector<float> finite_host_copy(const InputArray& array, const Shape& shape, const char* name);

}  // namespace mbmpo::python
