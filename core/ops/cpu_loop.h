// The CPU strided loop every elementwise kernel runs on: dims are coalesced, the outer dims
// (or, when everything merged into one run, pieces of it) are split across OpenMP threads and
// the innermost run is handed to the kernel, which vectorises it when all its strides are 1.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include "core/half.h"
#include "core/shape.h"

namespace moegrad::cpu {

// Work below this many elements stays on one thread: thread start-up costs more.
inline constexpr int64_t kParallelGrain = 32768;

// dst = T(v), for `omp simd` loops: there GCC keeps a bf16 or f16 made by T(v) in a per-lane
// array and runs the loop scalar (a bf16 RMSNorm took four times f32's time); a store of the
// rounded bits makes no such temporary.
template <typename T, typename V>
inline void store_rounded(T& dst, V v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
    dst.bits = T::from_float(float(v));
  } else {
    dst = T(v);
  }
}

// Calls inner(count, offsets, inner_strides) once per innermost run, where offsets[k] is the
// element offset of operand k at the run's start. `strides[k]` are operand k's element
// strides over `shape` (0 along broadcast dims).
template <size_t N, typename Inner>
void strided_loop(const Shape& shape, const ShapeRefs<N>& strides, Inner&& inner) {
  // Drop size-1 dims and merge neighbours whose strides line up, innermost first.
  std::array<int64_t, 16> size{};
  std::array<std::array<int64_t, 16>, N> st{};
  int nd = 0;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (nd > 0) {
      bool mergeable = true;
      for (size_t k = 0; k < N; ++k)
        if (strides[k].get()[d] != st[k][nd - 1] * size[nd - 1]) mergeable = false;
      if (mergeable) {
        size[nd - 1] *= shape[d];
        continue;
      }
    }
    size[nd] = shape[d];
    for (size_t k = 0; k < N; ++k) st[k][nd] = strides[k].get()[d];
    ++nd;
  }
  int64_t numel = shape_numel(shape);
  if (numel == 0) return;
  if (nd == 0) {  // a single element
    std::array<int64_t, N> off{}, ist{};
    inner(int64_t(1), off, ist);
    return;
  }
  int64_t run = size[0];
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = st[k][0];
  int64_t rows = numel / run;

  auto do_row = [&](int64_t r) {
    std::array<int64_t, N> off{};
    int64_t rem = r;
    for (int d = 1; d < nd; ++d) {
      int64_t i = rem % size[d];
      rem /= size[d];
      for (size_t k = 0; k < N; ++k) off[k] += i * st[k][d];
    }
    inner(run, off, inner_stride);
  };
  if (numel >= kParallelGrain && rows == 1) {
    // One long run (a contiguous tensor, whose dims all merged): its pieces go to the threads.
    const int64_t pieces = (run + kParallelGrain - 1) / kParallelGrain;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < pieces; ++p) {
      std::array<int64_t, N> off{};
      const int64_t begin = p * kParallelGrain;
      for (size_t k = 0; k < N; ++k) off[k] = begin * inner_stride[k];
      inner(std::min(kParallelGrain, run - begin), off, inner_stride);
    }
    return;
  }
  if (numel >= kParallelGrain && rows > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) do_row(r);
  } else {
    for (int64_t r = 0; r < rows; ++r) do_row(r);
  }
}

}  // namespace moegrad::cpu
