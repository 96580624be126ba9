// The per-row math of router_topk's renormalisation and backward, shared by the CPU and CUDA
// kernels so both compute the same bits: each sum over the k picked experts runs serially in
// selection order, in f64, and is rounded once; its products are rounded before they are added
// (nvcc would contract them into fused multiply-adds, which changes f64 bits).
#pragma once
#include <cstdint>

#include "core/half.h"

namespace moegrad {

MOEGRAD_HD double product_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// S: the f64 sum of the picked probabilities p[idx[j]], j < k, rounded to T.
template <typename T>
MOEGRAD_HD T selected_sum(const T* p, const int64_t* idx, int64_t k) {
  double s = 0;
  for (int64_t j = 0; j < k; ++j) s += double(p[idx[j]]);
  return T(s);
}

// The loss's gradient at a picked probability, from the gradient g_j of its weight: g_j, or
// through w_j = p_j / S (every weight depends on S): (g_j - sum_l g_l w_l) / S.
template <typename T>
struct SelectedGrad {
  bool normalize;
  T S, s;
  MOEGRAD_HD T operator()(T g) const { return normalize ? T((g - s) / S) : g; }
};

// The row's SelectedGrad: p its probabilities, idx its k picks, g its weights' gradient.
template <typename T>
MOEGRAD_HD SelectedGrad<T> selected_grad(const T* p, const int64_t* idx, const T* g, int64_t k,
                                         bool normalize) {
  SelectedGrad<T> sg{normalize, T(1), T(0)};
  if (!normalize) return sg;
  sg.S = selected_sum(p, idx, k);
  double s = 0;
  for (int64_t j = 0; j < k; ++j) s += product_rn(double(g[j]), double(T(p[idx[j]] / sg.S)));
  sg.s = T(s);
  return sg;
}

// The softmax backward's row term sum_i dL/dp_i p_i: only the picked experts contribute.
template <typename T>
MOEGRAD_HD T selected_dot(const SelectedGrad<T>& sg, const T* p, const int64_t* idx, const T* g,
                          int64_t k) {
  double dot = 0;
  for (int64_t j = 0; j < k; ++j) dot += product_rn(double(sg(g[j])), double(p[idx[j]]));
  return T(dot);
}

// Logit i's gradient: d = dL/dp_i (0 for an expert not picked).
template <typename T>
MOEGRAD_HD T logit_grad(T p, T d, T dot) {
  return p * (d - dot);
}

}  // namespace moegrad
