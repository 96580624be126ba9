// gathered_grouped_matmul's kernel: the experts' GEMMs in bf16 on the tensor cores, with the row
// groups read on the device. cuBLAS's grouped GEMM takes every group's size as a host argument,
// so routing computed on the GPU had to come back to the host once per MoE layer; here a grid
// sized for any split of the rows (core/ops/group_tiles.h) finds each block's group itself.
// The gather of the experts' input rows happens in the tile loads, so no gathered copy of x is
// made. A block computes a 128 x 128 output tile with 8 warps, each 64 x 32 of it in mma.sync
// m16n8k16 fragments; K streams 32 at a time through four shared-memory stages filled by
// cp.async, three steps ahead of the multiply. Every output element has one writer and sums in a
// fixed order, rounded once to bf16: results are bit-identical run to run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "core/cuda/launch.cuh"
#include "core/cuda/mma.cuh"
#include "core/cuda/runtime.h"
#include "core/cuda/strided.cuh"
#include "core/ops/group_tiles.h"
#include "core/ops/matmul.h"
#include "core/storage.h"

namespace moegrad::cuda {
namespace {

constexpr int kTileM = 128, kTileN = 128, kTileK = 32, kThreads = 256;
// A step's multiply keeps the SM's tensor cores busy for a few hundred cycles, less than a
// global load takes to arrive, so loads run kStages - 1 steps ahead: two stages left the latency
// exposed, as in CUTLASS's multistage kernels for Ampere.
constexpr int kStages = 4;
// 8 warps as 2 x 4, each owning 64 x 32 of the tile: 4 x 4 mma tiles.
constexpr int kWarpM = 64, kWarpN = 32, kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;
// Shared tiles are padded by 16 bytes a row, so that the 8 rows a fragment load or an ldmatrix
// phase reads fall in distinct banks: [m][k] and [n][k] tiles kTileK + 8 apart, [k][m] and
// [k][n] tiles kTileM + 8 (= kTileN + 8).
constexpr int kLdK = kTileK + 8, kLdMN = kTileN + 8;
constexpr int kStageMK = kTileM * kLdK, kStageKN = kTileK * kLdMN;
constexpr int kStage = std::max(kStageMK, kStageKN);
// A stage is 128 x 32 of each operand: 512 chunks of 16 bytes, two per thread.
constexpr int kChunks = kTileM * kTileK / 8 / kThreads;
static_assert(kTileM == kTileN && kChunks == 2);
// kStages buffers of each operand, 80 KiB: dynamic shared memory (a static array may take 48).
// Two blocks an SM fit it and, at 128 registers a thread, the register file.
constexpr int kBlocksPerSm = 2;
constexpr size_t kSharedBytes = 2 * kStages * kStage * sizeof(bf16);

// The block's stage buffers in dynamic shared memory: operand A's kStages, then B's.
struct StageBuffers {
  bf16* base;
  __device__ StageBuffers() {
    extern __shared__ __align__(16) unsigned char smem[];
    base = reinterpret_cast<bf16*>(smem);
  }
  __device__ bf16* a(int st) const { return base + st * kStage; }
  __device__ bf16* b(int st) const { return base + (kStages + st) * kStage; }
};

using Accumulator = float[kFragsM][kFragsN][4];

// Where a thread's warp and lane sit in the block's tile.
struct WarpTile {
  FragLane f;
  int wm, wn;  // the warp's first row and column in the tile
  __device__ WarpTile()
      : wm(int(threadIdx.x) / 32 / 4 * kWarpM), wn(int(threadIdx.x) / 32 % 4 * kWarpN) {}
};

// acc += the warp's 64 x 32 of a 16-column slice of the stage: A fragments as given, B from a
// [k][n] tile (ldmatrix, transposed) or an [n][k] tile (its rows are the column-major operand).
template <bool BKn>
__device__ __forceinline__ void multiply_slice(Accumulator& acc, const uint32_t (&af)[kFragsM][4],
                                               const bf16* b, int kk, const WarpTile& t) {
  uint32_t bf[kFragsN][2];
#pragma unroll
  for (int nt = 0; nt < kFragsN; nt += 2) {
    if constexpr (BKn) {
      uint32_t q[4];
      frag_b_trans<kLdMN>(q, b, kk, t.wn + 8 * nt, t.f);
      bf[nt][0] = q[0];
      bf[nt][1] = q[1];
      bf[nt + 1][0] = q[2];
      bf[nt + 1][1] = q[3];
    } else {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const bf16* q = b + (t.wn + 8 * (nt + j) + t.f.row) * kLdK + kk + t.f.col;
        bf[nt + j][0] = ld_pair(q);
        bf[nt + j][1] = ld_pair(q + 8);
      }
    }
  }
#pragma unroll
  for (int mt = 0; mt < kFragsM; ++mt)
#pragma unroll
    for (int nt = 0; nt < kFragsN; ++nt) mma_bf16(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
}

// `steps` steps of kTileK through kStages shared-memory buffers: load(st, step) starts the
// cp.async copies of a step into buffer st, multiply(st) consumes one. Each thread commits one
// group per step, empty past the last, so waiting until kStages - 2 are in flight means step s
// has landed. The barrier after the wait also means every warp is done with step s - 1, whose
// buffer the load of step s + kStages - 1 then overwrites.
template <class Load, class Multiply>
__device__ __forceinline__ void pipeline(int64_t steps, Load&& load, Multiply&& multiply) {
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < steps) load(st, st);
    cp_async_commit();
  }
  int st = 0;  // step s's buffer: s % kStages
  for (int64_t s = 0; s < steps; ++s) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    const int64_t ahead = s + kStages - 1;
    if (ahead < steps) load(st == 0 ? kStages - 1 : st - 1, ahead);
    cp_async_commit();
    multiply(st);
    st = st + 1 == kStages ? 0 : st + 1;
  }
  cp_async_wait<0>();  // nothing may be in flight into shared memory when the block exits
}

// The warp's share of a tile whose first element is out[row0][col0] (rows ld apart), each
// element rounded once to bf16; rows from row_end and columns from col_end skipped.
__device__ __forceinline__ void store_tile(bf16* out, int64_t ld, int64_t row0, int64_t row_end,
                                           int64_t col0, int64_t col_end, const Accumulator& acc,
                                           const WarpTile& t) {
#pragma unroll
  for (int mt = 0; mt < kFragsM; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = row0 + t.wm + 16 * mt + t.f.row + 8 * h;
      if (row >= row_end) continue;
#pragma unroll
      for (int nt = 0; nt < kFragsN; ++nt) {
        const int64_t col = col0 + t.wn + 8 * nt + t.f.col;
        if (col < col_end)
          *reinterpret_cast<uint32_t*>(out + row * ld + col) =
              pack_pair(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
      }
    }
}

template <typename I>
struct Operands {
  bf16* out;                  // [total, n]
  const bf16* x;              // rows ldx apart
  const I* rows;              // x's row of each output row; null: the output row itself
  const bf16* w;              // group g at w + g * w_group: [n][k] (trans_w) or [k][n], ldw
  const int64_t* start;       // [groups + 1]
  const int64_t* tile_start;  // [groups + 1], group_tiles::tile_starts
  int64_t groups, total, n, k, ldx, w_group, ldw, col_tiles;
};

__global__ void tile_starts_kernel(const int64_t* start, int64_t groups, int64_t* tile_start) {
  group_tiles::tile_starts(start, groups, kTileM, tile_start);
}

template <bool TransW, typename I>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    gathered_grouped_gemm_kernel(Operands<I> p) {
  // Consecutive blocks share a row tile (and so its gathered rows), then a group's weights.
  const int64_t tile = int64_t(blockIdx.x) / p.col_tiles;
  if (tile >= p.tile_start[p.groups]) return;  // the grid's spare tiles
  const int64_t g = group_tiles::group_of_tile(p.tile_start, p.groups, tile);
  const int64_t row0 = p.start[g] + (tile - p.tile_start[g]) * kTileM;
  const int64_t row_end = p.start[g + 1] < p.total ? p.start[g + 1] : p.total;
  const int64_t col0 = int64_t(blockIdx.x) % p.col_tiles * kTileN;
  const bf16* w = p.w + g * p.w_group;
  const int tid = int(threadIdx.x);
  const StageBuffers buf;

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
  // K columns [k0, k0 + kTileK) of x's rows and of W; what lies past the rows, N or K reads as 0.
  auto load = [&](int st, int64_t step) {
    const int64_t k0 = step * kTileK;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const bool ok = a_ok[i] && k0 + a_col < p.k;
      cp_async<16>(buf.a(st) + (tid / 4 + i * (kThreads / 4)) * kLdK + a_col,
                   ok ? a_src[i] + k0 : p.x, ok);
      const int c = tid + i * kThreads;
      if constexpr (TransW) {
        const int n = c / (kTileK / 8), kc = c % (kTileK / 8) * 8;
        const bool w_ok = col0 + n < p.n && k0 + kc < p.k;
        cp_async<16>(buf.b(st) + n * kLdK + kc, w_ok ? w + (col0 + n) * p.ldw + k0 + kc : p.w,
                     w_ok);
      } else {
        const int kr = c / (kTileN / 8), nc = c % (kTileN / 8) * 8;
        const bool w_ok = k0 + kr < p.k && col0 + nc < p.n;
        cp_async<16>(buf.b(st) + kr * kLdMN + nc, w_ok ? w + (k0 + kr) * p.ldw + col0 + nc : p.w,
                     w_ok);
      }
    }
  };
  const WarpTile t;
  Accumulator acc = {};
  pipeline((p.k + kTileK - 1) / kTileK, load, [&](int st) {
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t af[kFragsM][4];
#pragma unroll
      for (int mt = 0; mt < kFragsM; ++mt) frag_a<kLdK>(af[mt], buf.a(st), t.wm + 16 * mt, kk, t.f);
      multiply_slice<!TransW>(acc, af, buf.b(st), kk, t);
    }
  });
  store_tile(p.out, p.n, row0, row_end, col0, p.n, acc, t);
}

template <typename I>
struct TnOperands {
  bf16* out;             // [groups, m, n]
  const bf16* a;         // rows lda apart
  const bf16* b;         // rows ldb apart
  const I* a_rows;       // a's row for each of the total rows, group by group; null: the row
  const I* b_rows;       // b's row for each of them; null: the row
  const int64_t* start;  // [groups + 1]
  const int64_t* order;  // [groups]: the groups, most rows first
  int64_t total, m, n, lda, ldb, row_tiles, col_tiles;
};

__global__ void heavy_first_kernel(const int64_t* start, int64_t groups, int64_t* order) {
  const int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g < groups) order[group_tiles::heavy_first_place(start, groups, g)] = g;
}

// out[g] = a[a_rows of g]^T b[b_rows of g]: block (group, row tile, column tile), the sum over
// the group's rows streamed kTileK rows a step; a group of no rows writes zeros. A block's time
// grows with its group's rows, so the groups go most rows first.
template <typename I>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    gathered_grouped_gemm_tn_kernel(TnOperands<I> p) {
  // Consecutive blocks share a group's rows.
  const int64_t block = blockIdx.x, tiles = p.row_tiles * p.col_tiles;
  const int64_t g = p.order[block / tiles];
  const int64_t row0 = block % tiles / p.col_tiles * kTileM, col0 = block % p.col_tiles * kTileN;
  const int64_t first = p.start[g] > 0 ? p.start[g] : 0;
  const int64_t last = p.start[g + 1] < p.total ? p.start[g + 1] : p.total;
  const int tid = int(threadIdx.x);
  const StageBuffers buf;
  // Rows [r0, r0 + kTileK) of a's picks (columns from row0) and of b's (columns from col0),
  // [k][m] and [k][n]; what lies past the group's rows, M or N reads as 0.
  auto load = [&](int st, int64_t step) {
    const int64_t r0 = first + step * kTileK;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int c = tid + i * kThreads;
      const int kr = c / (kTileM / 8), mc = c % (kTileM / 8) * 8;
      const int64_t r = r0 + kr;
      const bool a_ok = r < last && row0 + mc < p.m, b_ok = r < last && col0 + mc < p.n;
      const int64_t a_src = !a_ok ? 0 : p.a_rows ? int64_t(p.a_rows[r]) : r;
      cp_async<16>(buf.a(st) + kr * kLdMN + mc, a_ok ? p.a + a_src * p.lda + row0 + mc : p.a,
                   a_ok);
      const int64_t b_src = !b_ok ? 0 : p.b_rows ? int64_t(p.b_rows[r]) : r;
      cp_async<16>(buf.b(st) + kr * kLdMN + mc, b_ok ? p.b + b_src * p.ldb + col0 + mc : p.b,
                   b_ok);
    }
  };
  const WarpTile t;
  Accumulator acc = {};
  pipeline(last > first ? (last - first + kTileK - 1) / kTileK : 0, load, [&](int st) {
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t af[kFragsM][4];
#pragma unroll
      for (int mt = 0; mt < kFragsM; ++mt)
        frag_a_trans<kLdMN>(af[mt], buf.a(st), kk, t.wm + 16 * mt, t.f);
      multiply_slice<true>(acc, af, buf.b(st), kk, t);
    }
  });
  store_tile(p.out + g * p.m * p.n, p.n, row0, p.m, col0, p.n, acc, t);
}

// Whole 16-byte chunks of 8 elements: the last dim contiguous and a multiple of 8 long, every
// other stride a multiple of 8, the data 16-byte aligned.
bool chunked(const Tensor& t) {
  for (int64_t d = 0; d + 1 < t.dim(); ++d)
    if (t.stride(d) % 8 != 0) return false;
  return t.dtype() == DType::BF16 && t.stride(-1) == 1 && t.size(-1) % 8 == 0 &&
         reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// f(each of `rows` as an I pointer, null when undefined): I is int64_t when a defined one is
// int64, else int32_t (the defined ones share their type).
template <class F, class... Rows>
void with_rows(F&& f, const Rows&... rows) {
  auto call = [&](auto tag) {
    using I = decltype(tag);
    f(rows.defined() ? rows.template data<I>() : static_cast<I*>(nullptr)...);
  };
  if (((rows.defined() && rows.dtype() == DType::I64) || ...))
    call(int64_t{});
  else
    call(int32_t{});
}

}  // namespace

bool gathered_grouped_gemm_fits(const Tensor& x, const Tensor& w, int64_t total, bool trans_w) {
  const int64_t n = w.size(trans_w ? 1 : 2);
  return chunked(x) && chunked(w) && n % 8 == 0 &&
         tiles(n, kTileN) * group_tiles::max_tiles(total, w.size(0), kTileM) <= INT_MAX;
}

void gathered_grouped_gemm(const Tensor& out, const Tensor& x, const Tensor& rows, const Tensor& w,
                           const Tensor& start, bool trans_w) {
  const int64_t groups = w.size(0);
  cudaStream_t s = stream(out.device().index);
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  const Tensor tile_start = empty({groups + 1}, DType::I64, out.device());
  tile_starts_kernel<<<1, 1, 0, s>>>(start.data<int64_t>(), groups, tile_start.data<int64_t>());
  MOEGRAD_CUDA_CHECK_LAUNCH();
  with_rows([&](const auto* picks) {
    using I = std::remove_cv_t<std::remove_pointer_t<decltype(picks)>>;
    const Operands<I> p{.out = out.data<bf16>(),
                        .x = x.data<bf16>(),
                        .rows = picks,
                        .w = w.data<bf16>(),
                        .start = start.data<int64_t>(),
                        .tile_start = tile_start.data<int64_t>(),
                        .groups = groups,
                        .total = out.size(0),
                        .n = out.size(1),
                        .k = x.size(1),
                        .ldx = x.stride(0),
                        .w_group = w.stride(0),
                        .ldw = w.stride(1),
                        .col_tiles = tiles(out.size(1), kTileN)};
    const dim3 blocks(unsigned(p.col_tiles * group_tiles::max_tiles(p.total, p.groups, kTileM)));
    launch(trans_w ? gathered_grouped_gemm_kernel<true, I> : gathered_grouped_gemm_kernel<false, I>,
           blocks, kThreads, kSharedBytes, out.device().index, p);
  }, rows);
}

bool gathered_grouped_gemm_tn_fits(const Tensor& a, const Tensor& b, int64_t groups) {
  return chunked(a) && chunked(b) &&
         groups * tiles(a.size(1), kTileM) * tiles(b.size(1), kTileN) <= INT_MAX;
}

void gathered_grouped_gemm_tn(const Tensor& out, const Tensor& a, const Tensor& a_rows,
                              const Tensor& b, const Tensor& b_rows, const Tensor& start,
                              int64_t total) {
  const int64_t groups = out.size(0);
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);
  const Tensor order = empty({groups}, DType::I64, out.device());
  heavy_first_kernel<<<unsigned(tiles(groups, 256)), 256, 0, stream(out.device().index)>>>(
      start.data<int64_t>(), groups, order.data<int64_t>());
  MOEGRAD_CUDA_CHECK_LAUNCH();
  with_rows([&](const auto* a_picks, const auto* b_picks) {
    using I = std::remove_cv_t<std::remove_pointer_t<decltype(a_picks)>>;
    const TnOperands<I> p{.out = out.data<bf16>(),
                          .a = a.data<bf16>(),
                          .b = b.data<bf16>(),
                          .a_rows = a_picks,
                          .b_rows = b_picks,
                          .start = start.data<int64_t>(),
                          .order = order.data<int64_t>(),
                          .total = total,
                          .m = a.size(1),
                          .n = b.size(1),
                          .lda = a.stride(0),
                          .ldb = b.stride(0),
                          .row_tiles = tiles(a.size(1), kTileM),
                          .col_tiles = tiles(b.size(1), kTileN)};
    const dim3 blocks(unsigned(groups * p.row_tiles * p.col_tiles));
    launch(gathered_grouped_gemm_tn_kernel<I>, blocks, kThreads, kSharedBytes, out.device().index,
           p);
  }, a_rows, b_rows);
}

}  // namespace moegrad::cuda
