// Backward rules of matmul, linear and the MoE experts' grouped projections. For C = op(A) op(B):
// dop(A) = G op(B)^T and dop(B) = op(A)^T G, written with transpose flags so no operand is copied
// to transpose it. A broadcast operand receives the gradient summed over the batch dims it was
// broadcast along.
#include "autograd/ops/matmul.h"

#include <algorithm>

#include "core/ops/binary.h"
#include "core/ops/index.h"
#include "core/ops/join.h"
#include "core/ops/matmul.h"
#include "core/ops/reduce.h"
#include "core/ops/swiglu.h"

namespace moegrad {
namespace {

// [..., R, C] as [(...) * R, C] (a copy only when the strides do not allow a view).
Tensor stack_rows(const Tensor& t) {
  Shape lead(t.shape().begin(), t.shape().end() - 1);
  return t.reshape({shape_numel(lead), t.size(-1)});
}

Tensor grad_first(const Tensor& g, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  Tensor ga = ta ? matmul(b, g, tb, true) : matmul(g, b, false, !tb);
  return sum_to(ga, a.shape());
}

Tensor grad_second(const Tensor& g, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  if (b.dim() == 2 && g.dim() > 2) {
    // A matrix shared by the whole batch (a weight): stacking the batch's rows makes its
    // gradient one GEMM over B * M rows, not B GEMMs and a sum over a [B, K, N] temporary
    // (worth the copy that stacking a transposed a takes).
    Tensor rows_g = stack_rows(g);
    Tensor rows_a = stack_rows(ta ? a.transpose(-2, -1) : a);
    return tb ? matmul(rows_g, rows_a, true, false) : matmul(rows_a, rows_g, true, false);
  }
  Tensor gb = tb ? matmul(g, a, true, ta) : matmul(a, g, !ta, false);
  return sum_to(gb, b.shape());
}

// Appends the weights w to `inputs` and their data to `data`; whether any of them trains.
bool add_weights(const std::vector<Variable>& w, std::vector<Tensor>& data,
                 std::vector<Variable>& inputs) {
  bool any_trains = false;
  for (const Variable& v : w) {
    data.push_back(v.data());
    inputs.push_back(v);
    any_trains |= v.requires_grad();
  }
  return any_trains;
}

// The weights' gradients grouped_matmul_tn(g, x, rows, want), into grads from index `first` on.
void put_weight_grads(std::vector<Tensor>& grads, size_t first, const Tensor& g, const Tensor& x,
                      const std::vector<int64_t>& rows, const std::vector<bool>& want) {
  const std::vector<Tensor> gw = grouped_matmul_tn(g, x, rows, want);
  std::copy(gw.begin(), gw.end(), grads.begin() + std::ptrdiff_t(first));
}

// Each group's gate and up weights as one [2 * out, in] matrix: OlmoeExperts keeps them back to
// back (HF's gate_up_proj), so it is a view, and both projections are one GEMM each way. Joined
// again in the backward rather than kept: weights not back to back are copies, which the graph
// should not hold between the passes.
std::vector<Tensor> joined_weights(const std::vector<Tensor>& gate, const std::vector<Tensor>& up) {
  std::vector<Tensor> joined;
  for (size_t g = 0; g < gate.size(); ++g) joined.push_back(concat_adjacent({gate[g], up[g]}));
  return joined;
}

}  // namespace

Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b) {
  Tensor x = a.data(), y = b.data();
  return make_result(matmul(x, y, trans_a, trans_b), "matmul", {a, b},
                     [x, y, trans_a, trans_b](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? grad_first(g, x, y, trans_a, trans_b) : Tensor(),
                           need[1] ? grad_second(g, x, y, trans_a, trans_b) : Tensor()};
                     });
}

Variable linear(const Variable& x, const Variable& w) {
  // The input is kept only for the weight's gradient: a frozen layer keeps no activation.
  Tensor xd = w.requires_grad() ? x.data() : Tensor(), wd = w.data();
  return make_result(linear(x.data(), wd), "linear", {x, w},
                     [xd, wd, xs = x.shape()](const Tensor& g, const std::vector<bool>& need) {
                       // Every leading dim of x is a batch of rows sharing w: fold them into one.
                       Tensor rows_g = stack_rows(g);
                       Tensor gx, gw;
                       if (need[0]) gx = matmul(rows_g, wd).view(xs);
                       if (need[1]) gw = matmul(rows_g, stack_rows(xd), true, false);
                       return std::vector<Tensor>{gx, gw};
                     });
}

Variable grouped_linear(const Variable& x, const std::vector<Variable>& w,
                        const std::vector<int64_t>& rows) {
  std::vector<Tensor> wd;
  std::vector<Variable> inputs{x};
  // The input is kept only for the weights' gradients, as in linear.
  const Tensor xd = add_weights(w, wd, inputs) ? x.data() : Tensor();
  return make_result(grouped_matmul(x.data(), wd, rows, true), "grouped_linear", inputs,
                     [xd, wd, rows](const Tensor& g, const std::vector<bool>& need) {
                       std::vector<Tensor> grads(wd.size() + 1);
                       if (need[0]) grads[0] = grouped_matmul(g, wd, rows, false);
                       if (!xd.defined()) return grads;  // no weight trains
                       put_weight_grads(grads, 1, g, xd, rows, {need.begin() + 1, need.end()});
                       return grads;
                     });
}

Variable grouped_swiglu_gathered(const Variable& x, const Tensor& index, const Tensor& x_rows,
                                 const std::vector<Variable>& gate, const std::vector<Variable>& up,
                                 const std::vector<int64_t>& rows, const Variable& scale) {
  MOEGRAD_CHECK(x.dim() == 2 && index.dim() == 1 &&
                    x_rows.shape() == Shape({index.size(0), x.size(1)}) &&
                    x_rows.dtype() == x.dtype(),
                "grouped_swiglu_gathered: x ", shape_str(x.shape()), " ", dtype_name(x.dtype()),
                ", index ", shape_str(index.shape()), " and x_rows ", shape_str(x_rows.shape()),
                " ", dtype_name(x_rows.dtype()),
                ": expected x [N, in], index [R] and x_rows [R, in] of x's dtype");
  MOEGRAD_CHECK(gate.size() == up.size(), "grouped_swiglu_gathered: ", gate.size(),
                " gate weights but ", up.size(), " up weights");
  std::vector<Variable> inputs{x};
  std::vector<Tensor> gd, ud;
  const bool gate_trains = add_weights(gate, gd, inputs);
  const bool up_trains = add_weights(up, ud, inputs);
  inputs.push_back(scale);
  const Tensor xd = gate_trains || up_trains ? x.data() : Tensor(), sd = scale.data();
  for (size_t g = 0; g < gd.size(); ++g)
    MOEGRAD_CHECK(gd[g].shape() == ud[g].shape(), "grouped_swiglu_gathered: group ", g,
                  "'s gate weight ", shape_str(gd[g].shape()), " and up weight ",
                  shape_str(ud[g].shape()), " differ in shape");
  const Tensor gate_up = grouped_matmul(x_rows, joined_weights(gd, ud), rows, true);  // [R, 2out]
  const int64_t width = gate_up.size(1) / 2;
  const Tensor gate_out = gate_up.narrow(1, 0, width), up_out = gate_up.narrow(1, width, width);
  return make_result(
      swiglu_scaled(gate_out, up_out, sd), "grouped_swiglu", inputs,
      [xd, index, gd, ud, rows, gate_out, up_out, sd, xs = x.shape()](
          const Tensor& g, const std::vector<bool>& need) {
        const std::vector<bool> want(need.begin() + 1, need.end() - 1);  // gates', then ups'
        const bool weights_wanted = std::find(want.begin(), want.end(), true) != want.end();
        // Both halves even when one projection is frozen: the input's gradient needs both, and
        // a frozen gate with a trained up (or the reverse) is rare enough to pay the extra half.
        const SwigluScaledGrads d = swiglu_scaled_backward(
            g, gate_out, up_out, sd, need[0] || weights_wanted, need.back());
        std::vector<Tensor> grads(need.size());
        grads.back() = d.scale;
        if (need[0]) {
          const Tensor dx_rows = grouped_matmul(d.gate_up, joined_weights(gd, ud), rows, false);
          grads[0] = index_add_to_zeros(xs, 0, index, dx_rows, IndexBounds::Trusted);
        }
        if (!weights_wanted) return grads;
        const Tensor x_rows = index_select(xd, 0, index, IndexBounds::Trusted);
        put_weight_grads(grads, 1, d.gate_up, x_rows, rows, want);
        return grads;
      });
}

}  // namespace moegrad
