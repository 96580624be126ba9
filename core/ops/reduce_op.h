// The reducers behind every reduction, shared by the CPU loops and the CUDA kernels so both
// backends compute the same thing. A reducer folds elements into an accumulator (step), merges
// two accumulators (combine) and writes the result of output j (write). A reducer of storage
// type T reads its elements as compute_t<T> (bf16 as f32) and rounds once in write. Sums
// accumulate in f64 for f32 and bf16 inputs too: long sums keep their precision, and the
// backends agree to the output's rounding whatever order they fold in.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/half.h"
#include "core/ops/reduce.h"
#include "core/ops/unary_op.h"
#include "core/tensor.h"

namespace moegrad {

// x viewed as [outer, R, inner] (strides so, sr, si): output j = o * inner + i reduces the R
// elements x[o, :, i].
struct ReduceLayout {
  int64_t outer, R, inner, so, sr, si;
  MOEGRAD_HD int64_t base(int64_t j) const { return (j / inner) * so + (j % inner) * si; }
};

inline ReduceLayout reduce_layout(const Tensor& x3) {
  return {x3.size(0), x3.size(1), x3.size(2), x3.stride(0), x3.stride(1), x3.stride(2)};
}

// NaN wins, as in torch.amax: once the accumulator is NaN it stays NaN.
template <typename T>
MOEGRAD_HD T nan_max(T a, T x) { return (a >= x || a != a) ? a : x; }

template <typename T>
struct SumReducer {
  using C = compute_t<T>;
  using Acc = double;
  T* out;
  double divisor;  // 1 for sum, the reduced count for mean
  MOEGRAD_HD Acc identity() const { return 0.0; }
  MOEGRAD_HD Acc step(Acc a, T x, int64_t) const { return a + double(C(x)); }
  MOEGRAD_HD Acc combine(Acc a, Acc b) const { return a + b; }
  // bf16 rounds through f32, as an f32 sum would be rounded.
  MOEGRAD_HD void write(int64_t j, Acc a) const { out[j] = T(C(a / divisor)); }
};

template <typename T>
struct AmaxReducer {
  using Acc = compute_t<T>;
  T* out;
  MOEGRAD_HD Acc identity() const { return -Acc(INFINITY); }
  MOEGRAD_HD Acc step(Acc a, T x, int64_t) const { return nan_max(a, Acc(x)); }
  MOEGRAD_HD Acc combine(Acc a, Acc b) const { return nan_max(a, b); }
  MOEGRAD_HD void write(int64_t j, Acc a) const { out[j] = T(a); }
};

template <typename T>
struct ValueIndex {
  T v;
  int64_t i;
};

// The first position of the maximum (the first NaN, if any). Ties are broken by index, not by
// fold order, so any split of the work gives the same answer.
template <typename T>
struct ArgMaxReducer {
  using C = compute_t<T>;
  using Acc = ValueIndex<C>;
  T* values;
  int64_t* indices;
  MOEGRAD_HD static bool better(Acc b, Acc a) {
    if (b.v != b.v) return a.v == a.v || b.i < a.i;
    if (a.v != a.v) return false;
    return b.v > a.v || (b.v == a.v && b.i < a.i);
  }
  MOEGRAD_HD Acc identity() const { return {-C(INFINITY), INT64_MAX}; }
  MOEGRAD_HD Acc step(Acc a, T x, int64_t r) const {
    const Acc b{C(x), r};
    return better(b, a) ? b : a;
  }
  MOEGRAD_HD Acc combine(Acc a, Acc b) const { return better(b, a) ? b : a; }
  MOEGRAD_HD void write(int64_t j, Acc a) const {
    values[j] = T(a.v);
    indices[j] = a.i;
  }
};

// Running maximum m and sum of exp(x - m), rescaled when m grows: logsumexp (and softmax's
// normaliser) in one pass. exp runs in T, the sum in f64.
template <typename T>
struct MaxSum {
  T m;
  double s;
};

template <typename T>
MOEGRAD_HD MaxSum<T> max_sum_step(MaxSum<T> a, T x) {
  if (x > a.m) {
    a.s = a.s * double(math::exp(T(a.m - x))) + 1.0;
    a.m = x;
  } else if (x == a.m) {  // also +-inf == m, where x - m would be NaN
    a.s += 1.0;
  } else {
    a.s += double(math::exp(T(x - a.m)));  // NaN x makes s NaN
  }
  return a;
}

template <typename T>
MOEGRAD_HD MaxSum<T> max_sum_combine(MaxSum<T> a, MaxSum<T> b) {
  if (b.m > a.m) {
    MaxSum<T> t = a;
    a = b;
    b = t;
  }
  if (b.s == 0.0) return a;  // an empty side: its m is -inf, and -inf - -inf is NaN
  a.s += b.m == a.m ? b.s : b.s * double(math::exp(T(b.m - a.m)));
  return a;
}

template <typename T>
struct LogSumExpReducer {
  using C = compute_t<T>;
  using Acc = MaxSum<C>;
  T* out;
  MOEGRAD_HD Acc identity() const { return {-C(INFINITY), 0.0}; }
  MOEGRAD_HD Acc step(Acc a, T x, int64_t) const { return max_sum_step(a, C(x)); }
  MOEGRAD_HD Acc combine(Acc a, Acc b) const { return max_sum_combine(a, b); }
  // An empty or all -inf row gives -inf + log(0 or n) = -inf.
  MOEGRAD_HD void write(int64_t j, Acc a) const { out[j] = T(C(double(a.m) + math::log(a.s))); }
};

// Calls run(reducer) with the reducer of `op` writing to `out`; both backends pick their
// reducer here, so they agree on what each op accumulates.
template <typename T, typename Run>
void with_reducer(ReduceOp op, T* out, int64_t reduced_count, Run&& run) {
  switch (op) {
    case ReduceOp::Sum: return run(SumReducer<T>{out, 1.0});
    case ReduceOp::Mean: return run(SumReducer<T>{out, double(reduced_count)});
    case ReduceOp::Amax: return run(AmaxReducer<T>{out});
    case ReduceOp::LogSumExp: return run(LogSumExpReducer<T>{out});
  }
}

}  // namespace moegrad
