// The block-to-tensor lookup shared by the multi-tensor kernels (AdamW's step, the gradient
// norm and rescale): one launch covers a list of tensors, each recording first_block, the
// launch's blocks before its own first.
#pragma once
#include <cstdint>

namespace moegrad::cuda {

// The index of the slice block b works on: the last whose first_block <= b. Slices are
// non-empty, so first_block strictly increases and every block has exactly one slice.
template <typename Slice>
__device__ __forceinline__ int slice_of_block(const Slice* slices, int count, int64_t b) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (slices[mid].first_block <= b) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace moegrad::cuda
