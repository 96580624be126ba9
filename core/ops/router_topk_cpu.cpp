#include <vector>

#include "core/ops/cpu_loop.h"
#include "core/ops/cpu_math.h"
#include "core/ops/router_topk.h"
#include "core/ops/router_topk_op.h"
#include "core/ops/topk.h"

namespace moegrad::cpu {
namespace {

// One thread per row: its softmax (as cpu::softmax computes it), then the top-k of the stored
// probabilities (as cpu::topk picks them), then the renormalisation.
template <typename T>
void forward_rows(T* probs, T* weights, int64_t* indices, const T* logits, int64_t rows, int64_t e,
                  int64_t k, bool normalize) {
#pragma omp parallel if (rows * e >= kParallelGrain)
  {
    std::vector<int64_t> order;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* x = logits + r * e;
      T* p = probs + r * e;
      T* w = weights + r * k;
      int64_t* idx = indices + r * k;
      const T inv = T(1.0 / store_exp(p, x, e, row_max(x, e)));
#pragma omp simd
      for (int64_t i = 0; i < e; ++i) p[i] *= inv;
      topk_row(p, e, k, w, idx, order);
      if (normalize) {
        const T s = selected_sum(p, idx, k);
        for (int64_t j = 0; j < k; ++j) w[j] = p[idx[j]] / s;
      }
    }
  }
}

template <typename T>
void backward_rows(T* grad_logits, const T* grad_weights, const T* probs, const int64_t* indices,
                   int64_t rows, int64_t e, int64_t k, bool normalize) {
#pragma omp parallel for schedule(static) if (rows * e >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* p = probs + r * e;
    const T* g = grad_weights + r * k;
    const int64_t* idx = indices + r * k;
    T* gx = grad_logits + r * e;
    const SelectedGrad<T> sg = selected_grad(p, idx, g, k, normalize);
    const T dot = selected_dot(sg, p, idx, g, k);
#pragma omp simd
    for (int64_t i = 0; i < e; ++i) gx[i] = logit_grad(p[i], T(0), dot);
    for (int64_t j = 0; j < k; ++j) gx[idx[j]] = logit_grad(p[idx[j]], sg(g[j]), dot);
  }
}

}  // namespace

void router_topk(const Tensor& probs, const Tensor& weights, const Tensor& indices,
                 const Tensor& logits, bool normalize) {
  dispatch_float(logits.dtype(), "router_topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward_rows(probs.data<T>(), weights.data<T>(), indices.data<int64_t>(), logits.data<T>(),
                 logits.size(0), logits.size(1), weights.size(1), normalize);
  });
}

void router_topk_backward(const Tensor& grad_logits, const Tensor& grad_weights,
                          const Tensor& probs, const Tensor& indices, bool normalize) {
  dispatch_float(probs.dtype(), "router_topk_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    backward_rows(grad_logits.data<T>(), grad_weights.data<T>(), probs.data<T>(),
                  indices.data<int64_t>(), probs.size(0), probs.size(1), grad_weights.size(1),
                  normalize);
  });
}

}  // namespace moegrad::cpu
