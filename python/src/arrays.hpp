// How arrays cross between Python and the library: NumPy arrays (and, on CUDA, any DLPack array
// such as a PyTorch tensor) are seen in place as TensorViews after their dtype, shape, device and
// layout are checked; results come back as NumPy arrays that own their memory.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo::python {

namespace nb = nanobind;
using NumpyArray = nb::ndarray<nb::numpy, float>;

// A NumPy array of `shape` that owns `values` (freed when Python drops the array).
NumpyArray to_numpy(std::vector<float> values, const Shape& shape);

// The array seen in place: float32, C-contiguous, `shape` (-1: any size on that axis), in the
// memory of `backend`. Anything else is an InputError (Python: ValueError) naming `name`.
TensorView<float> array_view(const nb::ndarray<>& array, Backend backend, const Shape& shape, const char* name);

// A host copy of a float32 NumPy array of `shape` (-1: any); NaN and infinities are refused.
std::vector<float> finite_host_copy(const nb::ndarray<>& array, const Shape& shape, const char* name);

}  // namespace mbmpo::python
