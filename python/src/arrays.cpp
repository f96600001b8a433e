#include "python/src/arrays.hpp"

#include <cmath>
#include <string>

#include "host/core/error.hpp"

namespace mbmpo::python {
namespace {

std::string shape_text(const std::vector<std::int64_t>& shape, bool wildcard) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + (wildcard && shape[i] < 0 ? std::string("N") : std::to_string(shape[i]));
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

NumpyArray to_numpy(std::vector<float> values, const Shape& shape) {
  auto* owned = new std::vector<float>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  std::vector<std::size_t> sizes(shape.begin(), shape.end());
  return NumpyArray(owned->data(), sizes.size(), sizes.data(), owner);
}

TensorView<float> array_view(const nb::ndarray<>& array, Backend backend, const Shape& shape, const char* name) {
  const bool on_cpu = array.device_type() == nb::device::cpu::value;
  const bool on_cuda = array.device_type() == nb::device::cuda::value;
  if ((backend == Backend::cpu && !on_cpu) || (backend == Backend::cuda && !on_cuda)) {
    throw InputError(std::string(name) + ": expected an array on the device in use (" + to_string(backend) +
                     "), got one on " + (on_cpu ? "cpu" : on_cuda ? "cuda" : "another device"));
  }
  if (array.dtype() != nb::dtype<float>()) throw InputError(std::string(name) + ": expected dtype float32");
  std::vector<std::int64_t> actual(array.ndim());
  for (std::size_t i = 0; i < array.ndim(); ++i) actual[i] = std::int64_t(array.shape(i));
  bool matches = actual.size() == shape.size();
  for (std::size_t i = 0; matches && i < shape.size(); ++i) matches = shape[i] < 0 || shape[i] == actual[i];
  if (!matches) {
    throw InputError(std::string(name) + ": expected shape " + shape_text(shape, true) + ", got " +
                     shape_text(actual, false));
  }
  std::int64_t expected_stride = 1;
  for (std::size_t i = actual.size(); i-- > 0;) {
    if (actual[i] > 1 && array.stride(i) != expected_stride) {
      throw InputError(std::string(name) + ": expected a C-contiguous array (e.g. numpy.ascontiguousarray)");
    }
    expected_stride *= actual[i];
  }
  return {backend, static_cast<float*>(array.data()), Shape(actual.begin(), actual.end())};
}

std::vector<float> finite_host_copy(const nb::ndarray<>& array, const Shape& shape, const char* name) {
  const TensorView<float> view = array_view(array, Backend::cpu, shape, name);
  std::vector<float> values(view.data, view.data + view.numel());
  for (float v : values) {
    if (!std::isfinite(v)) throw InputError(std::string(name) + ": contains NaN or infinite values");
  }
  return values;
}

}  // namespace mbmpo::python
