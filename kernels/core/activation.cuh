// Activation functions and their derivatives, written once for host and device.
#pragma once

#include <cmath>

#include "kernels/core/host_device.cuh"

namespace mbmpo {

enum class Activation { identity, relu, tanh, swish };

template <class T>
MBMPO_HD_INLINE T activate(Activation act, T pre) {
  using std::exp;
  using std::tanh;
  switch (act) {
    case Activation::relu: return pre > T(0) ? pre : T(0);
    case Activation::tanh: return tanh(pre);
    case Activation::swish: return pre / (T(1) + exp(-pre));
    case Activation::identity: break;
  }
  return pre;
}

// d act / d pre, evaluated at the pre-activation.
template <class T>
MBMPO_HD_INLINE T activation_derivative(Activation act, T pre) {
  using std::exp;
  using std::tanh;
  switch (act) {
    case Activation::relu: return pre > T(0) ? T(1) : T(0);
    case Activation::tanh: {
      const T y = tanh(pre);
      return T(1) - y * y;
    }
    case Activation::swish: {
      const T s = T(1) / (T(1) + exp(-pre));
      return s * (T(1) + pre * (T(1) - s));
    }
    case Activation::identity: break;
  }
  return T(1);
}

}  // namespace mbmpo
