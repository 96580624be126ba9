#include <cmath>
#include <type_traits>
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

// A row of T elements as compute_t<T>: f32 and f64 rows are read in place; a bf16 row is
// widened into this per-thread buffer, so that the f32 row kernels run on it.
template <typename T>
class WideRow {
 public:
  using C = compute_t<T>;
  explicit WideRow(int64_t n) : buf_(std::is_same_v<T, C> ? 0 : size_t(n)) {}
  const C* operator()(const T* x, int64_t n) {
    if constexpr (std::is_same_v<T, C>) {
      return x;
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) buf_[size_t(i)] = C(x[i]);
      return buf_.data();
    }
  }

 private:
  std::vector<C> buf_;
};

// d[j] = T(value(j)) for j < n. An f32 or f64 row may be the logits that value reads, element
// for element, which `omp simd` allows without an overlap check; a bf16 row is written from
// the widened copy.
template <typename T, typename Value>
void write_row(T* d, int64_t n, Value value) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) store_rounded(d[j], value(j));
}

// The loss and lse are kept in C (f32 for bf16 logits); only dlogits is stored as T.
template <typename T, typename I>
void forward(const Tensor& loss, const Tensor& lse, const Tensor& logits, const Tensor& targets,
             int64_t ignore_index, Reduction reduction) {
  using C = compute_t<T>;
  const int64_t N = logits.size(0), V = logits.size(1), ld = logits.stride(0);
  const T* xp = logits.data<T>();
  const I* tp = targets.data<I>();
  C* lp = lse.data<C>();
  std::vector<double> row_loss(size_t(N), 0.0);
#pragma omp parallel if (N * V >= kParallelGrain)
  {
    WideRow<T> wide(V);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const C* x = wide(xp + n * ld, V);
      const C m = row_max(x, V);
      const double s = sum_exp(x, V, m);
      const C l = m + C(std::log(s));
      lp[n] = l;
      const int64_t t = int64_t(tp[n]);
      if (t != ignore_index) row_loss[size_t(n)] = double(l) - double(x[t]);
    }
  }
  // Serial, in row order, so the loss does not depend on the thread count.
  double total = 0;
  for (double r : row_loss) total += r;
  loss.data<C>()[0] = C(total * row_scale(1.0, count_kept(tp, N, ignore_index), reduction));
}

template <typename T, typename I>
void backward(const Tensor& dlogits, const Tensor& grad, const Tensor& logits,
              const Tensor& targets, const Tensor& lse, int64_t ignore_index,
              Reduction reduction) {
  using C = compute_t<T>;
  const int64_t N = logits.size(0), V = logits.size(1), ld = logits.stride(0);
  const T* xp = logits.data<T>();
  const I* tp = targets.data<I>();
  const C* lp = lse.data<C>();
  T* dp = dlogits.data<T>();
  const C scale = C(row_scale(grad.item(), count_kept(tp, N, ignore_index), reduction));
#pragma omp parallel if (N * V >= kParallelGrain)
  {
    WideRow<T> wide(V);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      T* d = dp + n * V;
      const int64_t t = int64_t(tp[n]);
      if (t == ignore_index) {
        write_row(d, V, [](int64_t) { return C(0); });
        continue;
      }
      const C* x = wide(xp + n * ld, V);
      const C l = lp[n], xt = x[t];  // read before the row is written: d may be the logits
      write_row(d, V, [&](int64_t j) { return math::exp(C(x[j] - l)) * scale; });
      d[t] = T(math::exp(C(xt - l)) * scale - scale);
    }
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
