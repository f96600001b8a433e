#include "python/src/arrays.hpp"

#include "host/core/memory.hpp"

#include <cmath>

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

TensorView<float> checked_view(const ArrayFacts& a, Backend backend, const Shape& shape, const char* name) {
  if ((backend == Backend::cpu && !a.on_cpu) || (backend == Backend::cuda && !a.on_cuda)) {
    throw InputError(std::string(name) + ": expected an array on the device in use (" + to_string(backend) +
                     "), got one on " + (a.on_cpu ? "cpu" : a.on_cuda ? "cuda" : "another device"));
  }
  if (backend == Backend::cuda && a.device_id != current_cuda_device()) {
    throw InputError(std::string(name) + ": the array is on CUDA device " + std::to_string(a.device_id) +
                     ", but the library runs on device " + std::to_string(current_cuda_device()));
  }
  if (!a.is_float32) throw InputError(std::string(name) + ": expected dtype float32");
  bool matches = a.shape.size() == shape.size();
  for (std::size_t i = 0; matches && i < shape.size(); ++i) matches = shape[i] < 0 || shape[i] == a.shape[i];
  if (!matches) {
    throw InputError(std::string(name) + ": expected shape " + shape_text(shape, true) + ", got " +
                     shape_text(a.shape, false));
  }
  const Shape view_shape(a.shape.begin(), a.shape.end());
  if (shape_numel(view_shape) == 0) return {backend, static_cast<float*>(a.data), view_shape};  // no layout to check
  // What another library's stream may still be writing is finished before the library reads it.
  if (backend == Backend::cuda) synchronize_cuda_device();
  std::int64_t expected_stride = 1;
  for (std::size_t i = a.shape.size(); i-- > 0;) {
    if (a.shape[i] > 1 && a.strides[i] != expected_stride) {
      throw InputError(std::string(name) + ": expected a C-contiguous array (e.g. numpy.ascontiguousarray)");
    }
    expected_stride *= a.shape[i];
  }
  return {backend, static_cast<float*>(a.data), view_shape};
}

OutputArray writable_array(nb::handle object, const char* name) {
  OutputArray array;
  if (nb::try_cast(object, array)) return array;
  InputArray read_only;
  if (nb::try_cast(object, read_only)) {
    throw InputError(std::string(name) + ": the array is read-only, and it is written in place");
  }
  throw InputError(std::string(name) + ": expected an array (NumPy, or a DLPack tensor on CUDA), got " +
                   nb::cast<std::string>(nb::str(nb::handle(object.type()))));
}

TensorView<float> output_view(nb::object& out, Backend backend, const Shape& shape, const char* cuda_example) {
  if (!out.is_none()) return array_view(writable_array(out, "out"), backend, shape, "out");
  if (backend != Backend::cpu) {
    throw InputError(std::string("out: give the output array on CUDA (e.g. ") + cuda_example + ")");
  }
  std::int64_t count = 1;
  for (std::int64_t d : shape) count *= d;
  NumpyArray array = to_numpy(std::vector<float>(std::size_t(count)), shape);
  const TensorView<float> view{Backend::cpu, array.data(), shape};
  out = nb::cast(array);
  return view;
}

void check_finite(const TensorView<float>& view, const char* name) {
  const float* values = view.data;
  std::vector<float> host;
  if (view.backend != Backend::cpu) {
    host.resize(std::size_t(view.numel()));
    memory::copy(Backend::cpu, host.data(), view.backend, view.data, host.size() * sizeof(float));
    values = host.data();
  }
  for (std::int64_t i = 0; i < view.numel(); ++i) {
    if (!std::isfinite(values[i])) {
      throw InputError(std::string(name) + ": contains NaN or infinite values (the first at flat index " +
                       std::to_string(i) + ")");
    }
  }
}

std::vector<float> finite_host_copy(const InputArray& array, const Shape& shape, const char* name) {
  const TensorView<float> view = array_view(array, Backend::cpu, shape, name);
  std::vector<float> values(view.data, view.data + view.numel());
  for (float v : values) {
    if (!std::isfinite(v)) throw InputError(std::string(name) + ": contains NaN or infinite values");
  }
  return values;
}

}  // namespace mbmpo::python
