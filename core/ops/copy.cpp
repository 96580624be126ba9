#include "core/ops/copy.h"

#include "core/ops/dispatch.h"

namespace moegrad {

void copy_into(const Tensor& dst, const Tensor& src) {
  check_defined("copy", dst, "destination");
  check_defined("copy", src, "source");
  MOEGRAD_CHECK(dst.shape() == src.shape(), "copy: destination shape ", shape_str(dst.shape()),
                " differs from source shape ", shape_str(src.shape()));
  check_same_device("copy", dst, src);
  MOEGRAD_DISPATCH(dst.device(), "copy", copy_into, dst, src);
}

void fill_into(const Tensor& dst, double value) {
  check_defined("fill", dst, "destination");
  MOEGRAD_DISPATCH(dst.device(), "fill", fill_into, dst, value);
}

}  // namespace moegrad
