#include <cmath>
#include <vector>

#include "core/ops/cpu_loop.h"
#include "core/ops/cpu_math.h"
#include "core/ops/cross_entropy.h"

namespace moegrad::cpu {
namespace {

template <typename I>
int64_t count_kept(const I* tp, int64_t N, int64_t ignore_index) {
  int64_t count = 0;
  for (int64_t n = 0; n < N; ++n) count += int64_t(tp[n]) != ignore_index;
  return count;
}

// The factor d loss / d row_loss applied to every kept row.
double row_scale(double grad, int64_t count, Reduction reduction) {
  if (reduction == Reduction::Sum) return grad;
  return count > 0 ? grad / double(count) : 0.0;
}

template <typename T, typename I>
void forward(const Tensor& loss, const Tensor& lse, const Tensor& logits, const Tensor& targets,
             int64_t ignore_index, Reduction reduction) {
  const int64_t N = logits.size(0), V = logits.size(1), ld = logits.stride(0);
  const T* xp = logits.data<T>();
  const I* tp = targets.data<I>();
  T* lp = lse.data<T>();
  std::vector<double> row_loss(size_t(N), 0.0);
#pragma omp parallel for schedule(static) if (N * V >= kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = xp + n * ld;
    const T m = row_max(x, V);
    const double s = sum_exp(x, V, m);
    const T l = m + T(std::log(s));
    lp[n] = l;
    const int64_t t = int64_t(tp[n]);
    if (t != ignore_index) row_loss[size_t(n)] = double(l) - double(x[t]);
  }
  // Serial, in row order, so the loss does not depend on the thread count.
  double total = 0;
  for (double r : row_loss) total += r;
  loss.data<T>()[0] = T(total * row_scale(1.0, count_kept(tp, N, ignore_index), reduction));
}

template <typename T, typename I>
void backward(const Tensor& dlogits, const Tensor& grad, const Tensor& logits,
              const Tensor& targets, const Tensor& lse, int64_t ignore_index,
              Reduction reduction) {
  const int64_t N = logits.size(0), V = logits.size(1), ld = logits.stride(0);
  const T* xp = logits.data<T>();
  const I* tp = targets.data<I>();
  const T* lp = lse.data<T>();
  T* dp = dlogits.data<T>();
  const T scale = T(row_scale(grad.item(), count_kept(tp, N, ignore_index), reduction));
#pragma omp parallel for schedule(static) if (N * V >= kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = xp + n * ld;
    T* d = dp + n * V;
    const int64_t t = int64_t(tp[n]);
    if (t == ignore_index) {
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) d[j] = T(0);
      continue;
    }
    const T l = lp[n];
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) d[j] = math::exp(x[j] - l) * scale;
    d[t] -= scale;
  }
}

}  // namespace

void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  dispatch_float_index(logits.dtype(), targets.dtype(), "cross_entropy", [&](auto ttag, auto itag) {
    forward<typename decltype(ttag)::type, typename decltype(itag)::type>(
        loss, lse, logits, targets, ignore_index, reduction);
  });
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& grad, const Tensor& logits,
                            const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            Reduction reduction) {
  dispatch_float_index(logits.dtype(), targets.dtype(), "cross_entropy_backward", [&](auto ttag, auto itag) {
    backward<typename decltype(ttag)::type, typename decltype(itag)::type>(
        dlogits, grad, logits, targets, lse, ignore_index, reduction);
  });
}

}  // namespace moegrad::cpu
