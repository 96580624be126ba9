// Softmax and log-softmax along one dim, and their backward kernels, which work from the
// forward output y rather than the input. f32, f64 or bf16 tensors; the result takes the input's
// dtype. bf16 is computed in f32 and each output rounded once; row sums accumulate in f64.
#pragma once
#include "core/tensor.h"

namespace moegrad {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// grad_x = y * (grad - sum(grad * y)) along dim, for y = softmax(x, dim).
Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim);
// grad_x = grad - exp(y) * sum(grad) along dim, for y = log_softmax(x, dim).
Tensor log_softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim);

// Backends. Every operand is a contiguous [outer, D, inner] tensor; the softmax runs along D.
namespace cpu {
void softmax(const Tensor& out, const Tensor& x, bool log);
void softmax_backward(const Tensor& out, const Tensor& grad, const Tensor& y, bool log);
}  // namespace cpu
namespace cuda {
void softmax(const Tensor& out, const Tensor& x, bool log);
void softmax_backward(const Tensor& out, const Tensor& grad, const Tensor& y, bool log);
}  // namespace cuda

}  // namespace moegrad
