// Strided copy with dtype conversion (the kernel behind contiguous, clone, to and copy_),
// and fill.
#pragma once
#include "core/tensor.h"

namespace moegrad {

// dst[i] = convert(src[i]) over dst's shape; src must already have dst's shape (expand it
// first to broadcast). Same device; any dtypes; any strides.
void copy_into(const Tensor& dst, const Tensor& src);
void fill_into(const Tensor& dst, double value);

namespace cpu {
void copy_into(const Tensor& dst, const Tensor& src);
void fill_into(const Tensor& dst, double value);
}  // namespace cpu
namespace cuda {
void copy_into(const Tensor& dst, const Tensor& src);
void fill_into(const Tensor& dst, double value);
}  // namespace cuda

}  // namespace moegrad
