// The tensor-core and shared-memory primitives of moegrad's bf16 kernels (attention, the
// experts' grouped GEMM): cp.async copies into shared memory, mma.sync m16n8k16 (bf16 in, f32
// accumulate) and its operand fragments.
//
// Fragment coordinates (PTX ISA, "Matrix fragments for mma.m16n8k16"): lane l holds rows
// l / 4 and l / 4 + 8 and column pairs 2 (l % 4) + {0, 1} (+ 8 for the A operand's second
// half); a pair of bf16 shares one 32-bit register, the lower column in the low half.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/half.h"

namespace moegrad::cuda {

// Copies Bytes (16: cp.async's cache-global unit; 8 goes through L1) into shared memory; a
// source size of 0 fills them with zeros: rows and columns past the end.
template <int Bytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool valid) {
  const unsigned s = unsigned(__cvta_generic_to_shared(dst));
  if constexpr (Bytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src),
                 "r"(valid ? 16 : 0));
  } else {
    static_assert(Bytes == 8);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(s), "l"(src),
                 "r"(valid ? 8 : 0));
  }
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Where a lane's fragment elements lie: rows row and row + 8, columns col and col + 1.
struct FragLane {
  int lane, row, col;
  __device__ FragLane() : lane(int(threadIdx.x % 32)), row(lane / 4), col(2 * (lane % 4)) {}
};

__device__ __forceinline__ uint32_t ld_pair(const bf16* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}
// One cvt.rn.bf16x2.f32: round to nearest even, as bf16(float) does in about five integer
// instructions an element (they differ only in a NaN's payload).
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

// d += a b: a is 16 x 16 (row-major fragment), b 16 x 8 (column-major fragment), d 16 x 8 f32.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The A fragment of rows [r0, r0 + 16) and columns [k0, k0 + 16) of a [rows][Ld] tile.
template <int Ld>
__device__ __forceinline__ void frag_a(uint32_t (&a)[4], const bf16* tile, int r0, int k0,
                                       const FragLane& f) {
  const bf16* p = tile + (r0 + f.row) * Ld + k0 + f.col;
  a[0] = ld_pair(p);
  a[1] = ld_pair(p + 8 * Ld);
  a[2] = ld_pair(p + 8);
  a[3] = ld_pair(p + 8 * Ld + 8);
}

// Four 8 x 8 blocks of 16-bit elements, transposed: lanes 8j to 8j + 7 give the shared-memory
// addresses of block j's rows, and register j of each lane receives its pair of block j^T.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
  const unsigned s = unsigned(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s)
               : "memory");
}

// The A fragment of rows [m0, m0 + 16) and columns [k0, k0 + 16) of A when the tile holds A^T,
// stored [k][Ld] (m along a row): ldmatrix reads the four 8 x 8 blocks transposed. Lanes 8j to
// 8j + 7 address the rows of block j (fragment register j): m + 8 for j odd, k + 8 for j >= 2.
template <int Ld>
__device__ __forceinline__ void frag_a_trans(uint32_t (&a)[4], const bf16* tile, int k0, int m0,
                                             const FragLane& f) {
  const bf16* p = tile + (k0 + (f.lane & 7) + (f.lane >> 4) * 8) * Ld + m0 + (f.lane & 8);
  ldmatrix_x4_trans(a, p);
}

// Two B fragments, k in [k0, k0 + 16) by n in [n0, n0 + 8) and [n0 + 8, n0 + 16), of a tile
// stored [k][Ld] (n along a row): ldmatrix reads the four 8 x 8 blocks transposed. Lanes 8m to
// 8m + 7 address the rows of block m: k + 0-7 or 8-15 (m odd), n + 0 or 8 (m >= 2).
template <int Ld>
__device__ __forceinline__ void frag_b_trans(uint32_t (&b)[4], const bf16* tile, int k0, int n0,
                                             const FragLane& f) {
  const bf16* p = tile + (k0 + (f.lane & 7) + (f.lane & 8)) * Ld + n0 + (f.lane >> 4) * 8;
  ldmatrix_x4_trans(b, p);
}

}  // namespace moegrad::cuda
