#include <cuda_runtime.h>

#include "core/cuda/strided.cuh"
#include "core/ops/cross_entropy.h"
#include "core/ops/reduce_cuda.cuh"
#include "core/ops/reduce_op.h"

namespace moegrad::cuda {
namespace {

// The one block that folds the per-row losses: wide, so a long batch is read in few passes.
constexpr int kFoldThreads = 1024;

// Forward, one row per kThreads threads: an online max and sum of exp over the row (one read
// of the logits, W elements a load: 16-byte vectors when the rows allow, else 1), then the
// row's logsumexp and, for a kept row, its loss lse - x[target] in f64. Rows never meet here:
// the loss is folded by loss_kernel in a fixed order. T is the logits' storage type,
// C = compute_t<T> the type of every value computed (lse, loss, scale).
template <int kThreads, int W, typename T, typename I, typename C = compute_t<T>>
__global__ void forward_rows_kernel(C* lse, double* row_loss, const T* x, int64_t ld,
                                    const I* targets, int64_t N, int64_t V,
                                    int64_t ignore_index) {
  constexpr int kRows = kBlock / kThreads;
  __shared__ MaxSum<C> sm[kRows][kThreads];
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  MaxSum<C> a{-C(INFINITY), 0.0};
  if (row < N) {
    a = fold_row_elements<kThreads, W>(
        threadIdx.x, V, a, [](MaxSum<C> acc, T xi) { return max_sum_step(acc, C(xi)); },
        x + row * ld);
  }
  a = fold_row(a, sm, [](MaxSum<C> u, MaxSum<C> v) { return max_sum_combine(u, v); });
  if (row >= N || threadIdx.x != 0) return;
  const C l = a.m + C(math::log(a.s));
  lse[row] = l;
  const int64_t t = int64_t(targets[row]);
  row_loss[row] = t == ignore_index ? 0.0 : double(l) - double(C(x[row * ld + t]));
}

struct LossCount {
  double loss;
  long long kept;
};

// Every thread of the single block folds rows tid, tid + kFoldThreads, ... in order, then the
// block folds the threads in a fixed tree: the same bits on every run, whatever the GPU.
// row_loss may be null (count only).
template <typename I>
__device__ LossCount fold_rows(const double* row_loss, const I* targets, int64_t N,
                               int64_t ignore_index) {
  __shared__ LossCount sm[1][kFoldThreads];
  LossCount a{0.0, 0};
  for (int64_t n = threadIdx.x; n < N; n += kFoldThreads) {
    if (row_loss) a.loss += row_loss[n];
    a.kept += int64_t(targets[n]) != ignore_index;
  }
  return fold_row(a, sm, [](LossCount u, LossCount v) {
    return LossCount{u.loss + v.loss, u.kept + v.kept};
  });
}

// d loss / d row_loss of every kept row, as the CPU's row_scale: a fully ignored mean gives 0.
__device__ __forceinline__ double row_scale(double grad, long long kept, bool sum) {
  if (sum) return grad;
  return kept > 0 ? grad / double(kept) : 0.0;
}

template <typename C, typename I>
__global__ void loss_kernel(C* loss, const double* row_loss, const I* targets, int64_t N,
                            int64_t ignore_index, bool sum) {
  const LossCount a = fold_rows(row_loss, targets, N, ignore_index);
  if (threadIdx.x == 0) loss[0] = C(a.loss * row_scale(1.0, a.kept, sum));
}

// The backward's per-row factor, rounded to C as the CPU rounds it; computed on the device so
// that neither grad nor the count of kept rows travels to the host.
template <typename C, typename I>
__global__ void scale_kernel(C* scale, const C* grad, const I* targets, int64_t N,
                             int64_t ignore_index, bool sum) {
  const LossCount a = fold_rows<I>(nullptr, targets, N, ignore_index);
  if (threadIdx.x == 0) scale[0] = C(row_scale(double(grad[0]), a.kept, sum));
}

// dlogits = (softmax - onehot(target)) * scale, rebuilt from the saved logsumexp; an ignored
// row is zero. Rows are independent, so no thread waits on another. Computed in C, each
// element stored (rounded) once as T; W elements a load and a store, as in the forward.
template <int kThreads, int W, typename T, typename I, typename C = compute_t<T>>
__global__ void backward_rows_kernel(T* d, const T* x, int64_t ld, const I* targets, const C* lse,
                                     const C* scale, int64_t N, int64_t V, int64_t ignore_index) {
  constexpr int kRows = kBlock / kThreads;
  const int64_t row = int64_t(blockIdx.x) * kRows + threadIdx.y;
  if (row >= N) return;
  const T* xr = x + row * ld;
  T* dr = d + row * V;
  const int64_t t = int64_t(targets[row]);
  if (t == ignore_index) {
    map_row<kThreads, W>(threadIdx.x, V, [](int64_t) { return T(C(0)); }, dr);
    return;
  }
  const C l = lse[row], s = scale[0];
  map_row<kThreads, W>(
      threadIdx.x, V,
      [&](int64_t j, T x) {
        C v = math::exp(C(C(x) - l)) * s;
        if (j == t) v -= s;
        return T(v);
      },
      dr, xr);
}

}  // namespace

void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  const char* op = "cross_entropy";
  const int64_t N = logits.size(0), V = logits.size(1), ld = logits.stride(0);
  const int device = logits.device().index;
  cudaStream_t s = stream(device);
  Tensor row_loss = empty({N}, DType::F64, logits.device());
  dispatch_float_index(logits.dtype(), targets.dtype(), op, [&](auto ttag, auto itag) {
    using T = typename decltype(ttag)::type;
    using I = typename decltype(itag)::type;
    using C = compute_t<T>;
    const T* x = logits.data<T>();
    const I* tp = targets.data<I>();
    double* rl = row_loss.data<double>();
    if (N > 0) {
      launch_over_row_vectors<T>(
          op, N, V, {&logits}, [&](auto width, auto threads, unsigned grid, dim3 block) {
            constexpr int W = decltype(width)::value, kThreads = decltype(threads)::value;
            forward_rows_kernel<kThreads, W, T, I><<<grid, block, 0, s>>>(
                lse.data<C>(), rl, x, ld, tp, N, V, ignore_index);
          });
    }
    loss_kernel<C, I><<<1, kFoldThreads, 0, s>>>(loss.data<C>(), rl, tp, N, ignore_index,
                                                  reduction == Reduction::Sum);
    MOEGRAD_CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& grad, const Tensor& logits,
                            const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            Reduction reduction) {
  const char* op = "cross_entropy_backward";
  const int64_t N = logits.size(0), V = logits.size(1), ld = logits.stride(0);
  if (N == 0 || V == 0) return;
  cudaStream_t s = stream(logits.device().index);
  Tensor scale = empty({}, grad.dtype(), logits.device());
  dispatch_float_index(logits.dtype(), targets.dtype(), op, [&](auto ttag, auto itag) {
    using T = typename decltype(ttag)::type;
    using I = typename decltype(itag)::type;
    using C = compute_t<T>;
    const T* x = logits.data<T>();
    const I* tp = targets.data<I>();
    C* sp = scale.data<C>();
    scale_kernel<C, I><<<1, kFoldThreads, 0, s>>>(sp, grad.data<C>(), tp, N, ignore_index,
                                                   reduction == Reduction::Sum);
    MOEGRAD_CUDA_CHECK_LAUNCH();
    T* d = dlogits.data<T>();
    const C* lp = lse.data<C>();
    launch_over_row_vectors<T>(
        op, N, V, {&logits, &dlogits}, [&](auto width, auto threads, unsigned grid, dim3 block) {
          constexpr int W = decltype(width)::value, kThreads = decltype(threads)::value;
          backward_rows_kernel<kThreads, W, T, I><<<grid, block, 0, s>>>(d, x, ld, tp, lp, sp, N,
                                                                          V, ignore_index);
        });
  });
}

}  // namespace moegrad::cuda
