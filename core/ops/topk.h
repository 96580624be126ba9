// The k largest elements along the last dim, sorted in descending order.
//
// Order: larger values first; NaN counts as larger than every number (as in torch.topk); equal
// values (and NaNs) go by lower index first. The order is total, so the CPU and CUDA results
// agree exactly, indices included.
#pragma once
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace moegrad {

// x [..., n] (f32, f64 or bf16), 0 <= k <= n -> {values [..., k] (x's dtype), indices [..., k]
// (int64)}. bf16 elements are compared as the f32 values they hold, so the values are exact.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k);

namespace cpu {
// x contiguous [rows, n]; values and indices contiguous [rows, k].
void topk(const Tensor& values, const Tensor& indices, const Tensor& x);
// The k best of row[0, n) into vals / idx, best first: one row of cpu::topk, for kernels that
// select from rows they compute (router_topk). `order` is scratch a thread keeps across rows.
// T is float or double.
template <typename T>
void topk_row(const T* row, int64_t n, int64_t k, T* vals, int64_t* idx,
              std::vector<int64_t>& order);
}  // namespace cpu
namespace cuda {
void topk(const Tensor& values, const Tensor& indices, const Tensor& x);
}  // namespace cuda

}  // namespace moegrad
