// Tensor::str(): the debugging printout, PyTorch-like, summarised beyond 1000 elements.
#include <cmath>
#include <iomanip>
#include <sstream>

#include "core/tensor.h"

namespace moegrad {
namespace {

constexpr int64_t kSummariseAbove = 1000;
constexpr int64_t kEdgeItems = 3;

void print_rec(std::ostringstream& os, const std::vector<double>& v, const Shape& shape,
               const Shape& strides, int64_t d, int64_t base, bool summarise, bool integral,
               int indent) {
  if (shape.empty()) {
    os << v[base];
    return;
  }
  os << "[";
  int64_t n = shape[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && n > 2 * kEdgeItems && i == kEdgeItems) {
      os << "...";
      i = n - kEdgeItems - 1;
      os << (d + 1 == int64_t(shape.size()) ? ", " : ",\n" + std::string(indent + 1, ' '));
      continue;
    }
    if (d + 1 == int64_t(shape.size())) {
      double x = v[base + i * strides[d]];
      if (integral) {
        os << int64_t(x);
      } else {
        os << std::setprecision(4) << x;
      }
    } else {
      print_rec(os, v, shape, strides, d + 1, base + i * strides[d], summarise, integral,
                indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == int64_t(shape.size()) ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << shape_str(shape_) << ", " << dtype_name(dtype_) << ", " << device().str()
     << ")\n";
  std::vector<double> v = to_vector<double>();
  print_rec(os, v, shape_, contiguous_strides(shape_), 0, 0, numel() > kSummariseAbove,
            !is_floating(dtype_), 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace moegrad
