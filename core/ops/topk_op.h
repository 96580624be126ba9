// The order topk selects in, shared by the CPU and CUDA backends so that both pick the same
// elements in the same order.
#pragma once
#include <cstdint>

#include "core/half.h"

namespace moegrad {

// True when element (a, ia) comes before (b, ib): the larger value, NaN above all numbers,
// ties to the lower index. An index < 0 marks "no element", which comes after everything.
template <typename T>
MOEGRAD_HD bool topk_before(T a, int64_t ia, T b, int64_t ib) {
  if (ia < 0) return false;
  if (ib < 0) return true;
  bool a_nan = a != a, b_nan = b != b;
  if (a_nan != b_nan) return a_nan;
  if (!a_nan && a != b) return a > b;
  return ia < ib;
}

}  // namespace moegrad
