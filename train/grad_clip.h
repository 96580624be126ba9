// Global-norm gradient clipping over what a freeze mask trains, as
// torch.nn.utils.clip_grad_norm_: one L2 norm over all trainable gradients, then every gradient
// scaled by min(1, max_norm / (norm + 1e-6)).
#pragma once
#include "train/adamw.h"
#include "train/freeze_mask.h"

namespace moegrad::train {

// The L2 norm of the trainable gradients: squares summed in f64, parameter by parameter in
// `params` order (the same value on every run); a row-masked parameter counts its trained rows
// only; undefined gradients count as zero.
double grad_norm(const NamedParameters& params, const FreezeMask& mask);
// Its square, left where the gradients are (a one-element f64 tensor), for a caller that reads
// it with other values in one copy.
Tensor grad_norm_squared(const NamedParameters& params, const FreezeMask& mask);
// The same value over what `optimizer` trains, from its own list: no lookup by name a parameter
// (a training step's form).
Tensor grad_norm_squared(const AdamW& optimizer);

// What clipping multiplies the gradients by: min(1, max_norm / (norm + 1e-6)); 1 when max_norm
// <= 0 (no clipping) or the norm is not finite.
double clip_coefficient(double norm, double max_norm);

// Clips in place and returns the norm before clipping. max_norm <= 0 only measures. A
// non-finite norm is returned as is and nothing is scaled (the trainer stops on it). A row-masked
// parameter's whole gradient is scaled: its frozen rows are never read.
double clip_grad_norm(const NamedParameters& params, const FreezeMask& mask, double max_norm);
// The same over what `optimizer` trains.
inline double clip_grad_norm(const AdamW& optimizer, double max_norm) {
  return clip_grad_norm(optimizer.named_parameters(), optimizer.mask(), max_norm);
}

}  // namespace moegrad::train
