#include "train/grad_clip.h"

#include <cmath>

#include "core/ops/multi_tensor.h"

namespace moegrad::train {

namespace {

// The trained gradients (a row-masked parameter's trained rows only).
std::vector<Tensor> trained_grads(const NamedParameters& params, const FreezeMask& mask,
                                  bool rows_only) {
  std::vector<Tensor> grads;
  for (const auto& [name, p] : params) {
    const ParamMask& m = mask.at(name);
    const Tensor& g = p.grad();
    if (!m.trains() || !g.defined()) continue;
    if (rows_only && m.mode == ParamMask::Mode::Rows) {
      for (const auto& [first, count] : row_runs(m.rows))
        grads.push_back(g.narrow(0, first, count));
    } else {
      grads.push_back(g);
    }
  }
  return grads;
}

}  // namespace

Tensor grad_norm_squared(const NamedParameters& params, const FreezeMask& mask) {
  return sum_of_squares(trained_grads(params, mask, true));  // one multi-tensor reduction
}

Tensor grad_norm_squared(const AdamW& optimizer) {
  return sum_of_squares(optimizer.trained_grads());
}

double grad_norm(const NamedParameters& params, const FreezeMask& mask) {
  return std::sqrt(grad_norm_squared(params, mask).item());
}

double clip_coefficient(double norm, double max_norm) {
  const double coef = max_norm / (norm + 1e-6);
  return max_norm <= 0 || !std::isfinite(norm) || coef >= 1 ? 1.0 : coef;
}

double clip_grad_norm(const NamedParameters& params, const FreezeMask& mask, double max_norm) {
  const double norm = grad_norm(params, mask);
  const double coef = clip_coefficient(norm, max_norm);
  if (coef != 1.0) scale_(trained_grads(params, mask, false), coef);
  return norm;
}

}  // namespace moegrad::train
