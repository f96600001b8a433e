#include "host/core/tensor.hpp"

#include <sstream>

namespace mbmpo {

std::string shape_to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t count = 1;
  for (const std::int64_t extent : shape) {
    MBMPO_CHECK(extent >= 0, "negative extent in shape ", shape_to_string(shape));
    count *= extent;
  }
  return count;
}

}  // namespace mbmpo
