#include "train/grad_clip.h"

#include <cmath>

#include "core/ops/binary.h"
#include "core/ops/index.h"
#include "core/ops/reduce.h"

namespace moegrad::train {

double grad_norm(const NamedParameters& params, const FreezeMask& mask) {
  Tensor total;  // f64, on the gradients' device: one host sync at the end
  for (const auto& [name, p] : params) {
    const ParamMask& m = mask.at(name);
    const Tensor& g = p.grad();
    if (!m.trains() || !g.defined()) continue;
    Tensor x = m.mode == ParamMask::Mode::Rows
                   ? index_select(g, 0, from_vector(m.rows, {int64_t(m.rows.size())}, g.device()))
                   : g;
    x = x.to(DType::F64);
    Tensor squares = sum(mul(x, x));
    total = total.defined() ? add(total, squares.to(total.device())) : squares;
  }
  return total.defined() ? std::sqrt(total.item()) : 0.0;
}

double clip_grad_norm(const NamedParameters& params, const FreezeMask& mask, double max_norm) {
  const double norm = grad_norm(params, mask);
  const double coef = max_norm / (norm + 1e-6);
  if (max_norm <= 0 || !std::isfinite(norm) || coef >= 1) return norm;
  for (const auto& [name, p] : params) {
    const Tensor& g = p.grad();
    if (mask.at(name).trains() && g.defined())
      binary_(BinaryOp::Mul, g, scalar_tensor(coef, g.dtype(), g.device()));
  }
  return norm;
}

}  // namespace moegrad::train
