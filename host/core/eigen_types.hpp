// The Eigen matrix types of the CPU backend: row-major, like every buffer the backends share.
#pragma once

#include <Eigen/Core>

namespace mbmpo::cpu {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;
template <class T>
using ColVector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

}  // namespace mbmpo::cpu
