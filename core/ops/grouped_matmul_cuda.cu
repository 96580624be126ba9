// gathered_grouped_matmul's kernel: the experts' GEMMs in bf16 on the tensor cores, with the row
// groups read on the device. cuBLAS's grouped GEMM takes every group's size as a host argument,
// so routing computed on the GPU had to come back to the host once per MoE layer; here a grid
// sized for any split of the rows (core/ops/group_tiles.h) finds each block's group itself.
// The gather of the experts' input rows happens in the tile loads, so no gathered copy of x is
// made. A block computes a 128 x 128 output tile with 8 warps, each 64 x 32 of it in mma.sync
// m16n8k16 fragments; K streams 32 at a time through two shared-memory stages filled by
// cp.async. Every output element has one writer and sums in a fixed order, rounded once to bf16:
// results are bit-identical run to run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "core/cuda/mma.cuh"
#include "core/cuda/runtime.h"
#include "core/cuda/strided.cuh"
#include "core/ops/group_tiles.h"
#include "core/ops/matmul.h"
#include "core/storage.h"

namespace moegrad::cuda {
namespace {

constexpr int kTileM = 128, kTileN = 128, kTileK = 32, kThreads = 256;
// 8 warps as 2 x 4, each owning 64 x 32 of the tile: 4 x 4 mma tiles.
constexpr int kWarpM = 64, kWarpN = 32, kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;
// Shared tiles are padded by 16 bytes a row, so that the 8 rows a fragment load or an ldmatrix
// phase reads fall in distinct banks: x's rows [m][k]; W's [n][k] (trans_w) or [k][n].
constexpr int kLdA = kTileK + 8, kLdNK = kTileK + 8, kLdKN = kTileN + 8;
constexpr int kStageA = kTileM * kLdA;
constexpr int kStageB = kTileN * kLdNK > kTileK * kLdKN ? kTileN * kLdNK : kTileK * kLdKN;
// A stage is 128 x 32 of x and 32 x 128 of W: 512 chunks of 16 bytes each, two per thread.
constexpr int kChunks = kTileM * kTileK / 8 / kThreads;
static_assert(kChunks == 2 && kTileN * kTileK / 8 / kThreads == kChunks);

template <typename I>
struct Operands {
  bf16* out;                 // [total, n]
  const bf16* x;             // rows ldx apart
  const I* rows;             // x's row of each output row; null: the output row itself
  const bf16* w;             // group g at w + g * w_group: [n][k] (trans_w) or [k][n], ldw
  const int64_t* start;      // [groups + 1]
  const int64_t* tile_start; // [groups + 1], group_tiles::tile_starts
  int64_t groups, total, n, k, ldx, w_group, ldw, col_tiles;
};

__global__ void tile_starts_kernel(const int64_t* start, int64_t groups, int64_t* tile_start) {
  group_tiles::tile_starts(start, groups, kTileM, tile_start);
}

template <bool TransW, typename I>
__global__ void __launch_bounds__(kThreads)
    gathered_grouped_gemm_kernel(Operands<I> p) {
  __shared__ __align__(16) bf16 a_s[2][kStageA];
  __shared__ __align__(16) bf16 b_s[2][kStageB];
  // Consecutive blocks share a row tile (and so its gathered rows), then a group's weights.
  const int64_t tile = int64_t(blockIdx.x) / p.col_tiles;
  if (tile >= p.tile_start[p.groups]) return;  // the grid's spare tiles
  const int64_t g = group_tiles::group_of_tile(p.tile_start, p.groups, tile);
  const int64_t row0 = p.start[g] + (tile - p.tile_start[g]) * kTileM;
  const int64_t row_end = p.start[g + 1] < p.total ? p.start[g + 1] : p.total;
  const int64_t col0 = int64_t(blockIdx.x) % p.col_tiles * kTileN;
  const bf16* w = p.w + g * p.w_group;
  const int tid = int(threadIdx.x);

  // This thread's two x rows of every stage (the gather, done once) and its 8 columns of them.
  const int a_col = tid % 4 * 8;
  const bf16* a_src[kChunks];
  bool a_ok[kChunks];
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int64_t row = row0 + tid / 4 + i * (kThreads / 4);
    a_ok[i] = row < row_end;
    const int64_t src = !a_ok[i] ? 0 : p.rows ? int64_t(p.rows[row]) : row;
    a_src[i] = p.x + src * p.ldx + a_col;
  }
  // Starts copying K columns [k0, k0 + kTileK) of x's rows and W into stage st; what lies past
  // the rows, N or K reads as 0.
  auto load = [&](int st, int64_t k0) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const bool ok = a_ok[i] && k0 + a_col < p.k;
      cp_async<16>(&a_s[st][(tid / 4 + i * (kThreads / 4)) * kLdA + a_col],
                   ok ? a_src[i] + k0 : p.x, ok);
      const int c = tid + i * kThreads;
      if constexpr (TransW) {
        const int n = c / (kTileK / 8), kc = c % (kTileK / 8) * 8;
        const bool w_ok = col0 + n < p.n && k0 + kc < p.k;
        cp_async<16>(&b_s[st][n * kLdNK + kc], w_ok ? w + (col0 + n) * p.ldw + k0 + kc : p.w,
                     w_ok);
      } else {
        const int kr = c / (kTileN / 8), nc = c % (kTileN / 8) * 8;
        const bool w_ok = k0 + kr < p.k && col0 + nc < p.n;
        cp_async<16>(&b_s[st][kr * kLdKN + nc], w_ok ? w + (k0 + kr) * p.ldw + col0 + nc : p.w,
                     w_ok);
      }
    }
  };

  const FragLane f;
  const int warp = tid / 32, wm = warp / 4 * kWarpM, wn = warp % 4 * kWarpN;
  float acc[kFragsM][kFragsN][4] = {};
  const int64_t steps = (p.k + kTileK - 1) / kTileK;
  if (steps > 0) load(0, 0);
  cp_async_commit();
  for (int64_t s = 0; s < steps; ++s) {
    // The next stage loads while this one multiplies; the group committed last may be empty.
    if (s + 1 < steps) load(int(s + 1) & 1, (s + 1) * kTileK);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const bf16* a = a_s[s & 1];
    const bf16* b = b_s[s & 1];
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t af[kFragsM][4], bf[kFragsN][2];
#pragma unroll
      for (int mt = 0; mt < kFragsM; ++mt) frag_a<kLdA>(af[mt], a, wm + 16 * mt, kk, f);
#pragma unroll
      for (int nt = 0; nt < kFragsN; nt += 2) {
        if constexpr (TransW) {
          // W stored [n][k]: its rows are the column-major B operand as they are.
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const bf16* q = b + (wn + 8 * (nt + j) + f.row) * kLdNK + kk + f.col;
            bf[nt + j][0] = ld_pair(q);
            bf[nt + j][1] = ld_pair(q + 8);
          }
        } else {
          uint32_t q[4];
          frag_b_trans<kLdKN>(q, b, kk, wn + 8 * nt, f);
          bf[nt][0] = q[0];
          bf[nt][1] = q[1];
          bf[nt + 1][0] = q[2];
          bf[nt + 1][1] = q[3];
        }
      }
#pragma unroll
      for (int mt = 0; mt < kFragsM; ++mt)
#pragma unroll
        for (int nt = 0; nt < kFragsN; ++nt) mma_bf16(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
    }
    __syncthreads();  // the stage is read before the next step's load overwrites it
  }
  cp_async_wait<0>();  // nothing may be in flight into shared memory when the block exits

#pragma unroll
  for (int mt = 0; mt < kFragsM; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = row0 + wm + 16 * mt + f.row + 8 * h;
      if (row >= row_end) continue;
#pragma unroll
      for (int nt = 0; nt < kFragsN; ++nt) {
        const int64_t col = col0 + wn + 8 * nt + f.col;
        if (col < p.n)
          *reinterpret_cast<uint32_t*>(p.out + row * p.n + col) =
              pack_pair(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
      }
    }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int64_t col_tiles(int64_t n) { return (n + kTileN - 1) / kTileN; }

template <typename I>
void launch(const Tensor& out, const Tensor& x, const I* rows, const Tensor& w,
            const Tensor& start, const Tensor& tile_start, bool trans_w) {
  Operands<I> p;
  p.out = out.data<bf16>();
  p.x = x.data<bf16>();
  p.rows = rows;
  p.w = w.data<bf16>();
  p.start = start.data<int64_t>();
  p.tile_start = tile_start.data<int64_t>();
  p.groups = w.size(0);
  p.total = out.size(0);
  p.n = out.size(1);
  p.k = x.size(1);
  p.ldx = x.stride(0);
  p.w_group = w.stride(0);
  p.ldw = w.stride(1);
  p.col_tiles = col_tiles(p.n);
  const int64_t blocks = p.col_tiles * group_tiles::max_tiles(p.total, p.groups, kTileM);
  cudaStream_t s = stream(out.device().index);
  if (trans_w)
    gathered_grouped_gemm_kernel<true, I><<<unsigned(blocks), kThreads, 0, s>>>(p);
  else
    gathered_grouped_gemm_kernel<false, I><<<unsigned(blocks), kThreads, 0, s>>>(p);
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

// Whole 16-byte chunks of 8 elements: K and N multiples of 8, unit-stride rows whose starts
// are 16-byte aligned; and a grid of at most INT_MAX blocks.
bool gathered_grouped_gemm_fits(const Tensor& x, const Tensor& w, int64_t total, bool trans_w) {
  const int64_t k = x.size(1), n = w.size(trans_w ? 1 : 2);
  return x.dtype() == DType::BF16 && k % 8 == 0 && n % 8 == 0 && x.stride(1) == 1 &&
         x.stride(0) % 8 == 0 && w.stride(2) == 1 && w.stride(1) % 8 == 0 &&
         w.stride(0) % 8 == 0 && aligned16(x.data_ptr()) && aligned16(w.data_ptr()) &&
         col_tiles(n) * group_tiles::max_tiles(total, w.size(0), kTileM) <= INT_MAX;
}

void gathered_grouped_gemm(const Tensor& out, const Tensor& x, const Tensor& rows,
                           const Tensor& w, const Tensor& start, bool trans_w) {
  const int64_t groups = w.size(0);
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  const Tensor tile_start = empty({groups + 1}, DType::I64, out.device());
  tile_starts_kernel<<<1, 1, 0, stream(out.device().index)>>>(start.data<int64_t>(), groups,
                                                             tile_start.data<int64_t>());
  MOEGRAD_CUDA_CHECK_LAUNCH();
  if (rows.defined() && rows.dtype() == DType::I64)
    launch(out, x, rows.data<int64_t>(), w, start, tile_start, trans_w);
  else
    launch(out, x, rows.defined() ? rows.data<int32_t>() : nullptr, w, start, tile_start,
           trans_w);
}

}  // namespace moegrad::cuda
