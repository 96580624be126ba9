// Operations over a list of tensors at once, for the optimizer's pass over every gradient: the
// squared global norm, an in-place rescale, and the sums of gradient accumulation. On a GPU
// each is one or two launches for the whole list instead of several per tensor, and no host
// sync. Not differentiable.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace moegrad {

// The sum over every element x of every tensor of x * x, accumulated in f64, as a one-element
// f64 tensor on the tensors' device (float tensors of one device; undefined or empty ones add
// nothing; an empty list gives a CPU zero). The summation order is fixed, so the result is the
// same bits run to run. The list may mix f32, f64 and bf16 tensors (a bf16 model's gradients).
Tensor sum_of_squares(const std::vector<Tensor>& tensors);
// Multiplies every tensor by `factor` in place: the factor rounded to f32 for f32 and bf16
// tensors (a bf16 product rounded once), to f64 for f64 ones.
void scale_(const std::vector<Tensor>& tensors, double factor);
// sums[i] += addends[i] for each pair, in place: a mixed-precision step's f32 sums of its
// micro-batches' gradients. Each sum is a contiguous f32 tensor, its addend an f32 or bf16
// tensor of the same shape on the same device (undefined or empty addends add nothing). Each
// element is widened and added in f32: the bits of add_(sum, addend.to(DType::F32)).
void accumulate_(const std::vector<Tensor>& sums, const std::vector<Tensor>& addends);

namespace cpu {
// out: f64 [1]; tensors contiguous, non-empty, one dtype.
void sum_of_squares(const Tensor& out, const std::vector<Tensor>& tensors);
void scale_(const std::vector<Tensor>& tensors, double factor);
// sums f32, addends contiguous, of one dtype, each pair non-empty and of one size.
void accumulate_(const std::vector<Tensor>& sums, const std::vector<Tensor>& addends);
}  // namespace cpu
namespace cuda {
void sum_of_squares(const Tensor& out, const std::vector<Tensor>& tensors);
void scale_(const std::vector<Tensor>& tensors, double factor);
void accumulate_(const std::vector<Tensor>& sums, const std::vector<Tensor>& addends);
}  // namespace cuda

}  // namespace moegrad
