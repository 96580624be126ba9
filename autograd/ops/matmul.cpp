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

bool any(const std::vector<bool>& flags) {
  return std::find(flags.begin(), flags.end(), true) != flags.end();
}

// The weights' gradients from gw [G, blocks * width, in], all of the groups' at once
// (gathered_grouped_matmul_tn): want holds the flags of block 0's groups, then block 1's, and
// the gradient of weight i is group i % G's rows of block i / G. A weight whose group had no
// rows gets none, as grouped_matmul_tn's callers leave such a weight out.
void put_stacked_weight_grads(std::vector<Tensor>& grads, size_t first, const Tensor& gw,
                              const DeviceIndexGroups& groups, const std::vector<bool>& want) {
  const std::vector<int64_t> start = groups.host_start();
  const size_t count = size_t(gw.size(0));
  const int64_t width = gw.size(1) / int64_t(want.size() / count);
  for (size_t i = 0; i < want.size(); ++i) {
    const size_t g = i % count;
    if (want[i] && start[g + 1] > start[g])
      grads[first + i] = gw.select(0, int64_t(g)).narrow(0, int64_t(i / count) * width, width);
  }
}

// grouped_swiglu_gathered's operands: the node's inputs (x, the gates, the ups, the scale) and
// the data it keeps.
struct SwigluInputs {
  SwigluInputs(const Variable& x, const std::vector<Variable>& gate_w,
               const std::vector<Variable>& up_w, const Variable& scale)
      : inputs{x} {
    MOEGRAD_CHECK(gate_w.size() == up_w.size(), "grouped_swiglu_gathered: ", gate_w.size(),
                  " gate weights but ", up_w.size(), " up weights");
    const bool gate_trains = add_weights(gate_w, gate, inputs);
    const bool up_trains = add_weights(up_w, up, inputs);
    inputs.push_back(scale);
    if (gate_trains || up_trains) xd = x.data();
    sd = scale.data();
    xs = x.shape();
    for (size_t g = 0; g < gate.size(); ++g)
      MOEGRAD_CHECK(gate[g].shape() == up[g].shape(), "grouped_swiglu_gathered: group ", g,
                    "'s gate weight ", shape_str(gate[g].shape()), " and up weight ",
                    shape_str(up[g].shape()), " differ in shape");
  }
  std::vector<Variable> inputs;
  std::vector<Tensor> gate, up;
  Tensor xd, sd;  // x only when a weight trains (its gradient reads x's rows)
  Shape xs;
};

// The grouped SwiGLU node over gate_up [R, 2 * out], the joined gate and up projections of x's
// rows `index`: input_rows(d) turns d [R, 2 * out] into those rows' input gradient [R, in], and
// weight_grads(grads, d, want) puts the wanted weights' gradients from index 1 on.
template <typename InputRows, typename WeightGrads>
Variable grouped_swiglu_node(const SwigluInputs& in, const Tensor& index, const Tensor& gate_up,
                             InputRows input_rows, WeightGrads weight_grads) {
  const int64_t width = gate_up.size(1) / 2;
  const Tensor gate_out = gate_up.narrow(1, 0, width), up_out = gate_up.narrow(1, width, width);
  return make_result(
      swiglu_scaled(gate_out, up_out, in.sd), "grouped_swiglu", in.inputs,
      [index, gate_out, up_out, sd = in.sd, xs = in.xs, input_rows, weight_grads](
          const Tensor& g, const std::vector<bool>& need) {
        const std::vector<bool> want(need.begin() + 1, need.end() - 1);  // gates', then ups'
        const bool weights_wanted = any(want);
        // Both halves even when one projection is frozen: the input's gradient needs both, and
        // a frozen gate with a trained up (or the reverse) is rare enough to pay the extra half.
        const SwigluScaledGrads d =
            swiglu_scaled_backward(g, gate_out, up_out, sd, need[0] || weights_wanted, need.back());
        std::vector<Tensor> grads(need.size());
        grads.back() = d.scale;
        if (need[0])
          grads[0] = index_add_to_zeros(xs, 0, index, input_rows(d.gate_up), IndexBounds::Trusted);
        if (weights_wanted) weight_grads(grads, d.gate_up, want);
        return grads;
      });
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

Variable grouped_linear_index_add(const Variable& x, const std::vector<Variable>& w,
                                  const DeviceIndexGroups& groups) {
  MOEGRAD_CHECK(!w.empty(), "grouped_linear_index_add: expected at least one weight");
  MOEGRAD_CHECK(x.dim() == 2 && x.size(0) == groups.row.numel(), "grouped_linear_index_add: x ",
                shape_str(x.shape()), ": expected [", groups.row.numel(),
                ", in], a row for each grouped entry");
  std::vector<Tensor> wd;
  std::vector<Variable> inputs{x};
  const Tensor xd = add_weights(w, wd, inputs) ? x.data() : Tensor();
  const Tensor stack = stack_adjacent(wd);
  const Tensor rows = gathered_grouped_matmul(x.data(), Tensor(), stack, groups.start, true);
  return make_result(
      index_add_to_zeros({groups.index_rows, rows.size(1)}, 0, groups.row, rows,
                         IndexBounds::Trusted),
      "grouped_linear_index_add", inputs,
      [xd, stack, groups](const Tensor& g, const std::vector<bool>& need) {
        // Each row's gradient is g's row groups.row[r], picked in the GEMMs' loads.
        std::vector<Tensor> grads(need.size());
        if (need[0]) grads[0] = gathered_grouped_matmul(g, groups.row, stack, groups.start, false);
        const std::vector<bool> want(need.begin() + 1, need.end());
        if (xd.defined() && any(want))
          put_stacked_weight_grads(
              grads, 1, gathered_grouped_matmul_tn(g, groups.row, xd, Tensor(), groups.start),
              groups, want);
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
  const SwigluInputs in(x, gate, up, scale);
  const std::vector<Tensor> joined = joined_weights(in.gate, in.up);
  return grouped_swiglu_node(
      in, index, grouped_matmul(x_rows, joined, rows, true),
      [gd = in.gate, ud = in.up, rows](const Tensor& d) {
        return grouped_matmul(d, joined_weights(gd, ud), rows, false);
      },
      [xd = in.xd, index, rows](std::vector<Tensor>& grads, const Tensor& d,
                                const std::vector<bool>& want) {
        const Tensor x_rows = index_select(xd, 0, index, IndexBounds::Trusted);
        put_weight_grads(grads, 1, d, x_rows, rows, want);
      });
}

Variable grouped_swiglu_gathered(const Variable& x, const DeviceIndexGroups& groups,
                                 const std::vector<Variable>& gate, const std::vector<Variable>& up,
                                 const Variable& scale) {
  MOEGRAD_CHECK(x.dim() == 2, "grouped_swiglu_gathered: x ", shape_str(x.shape()),
                ": expected [N, in]");
  const SwigluInputs in(x, gate, up, scale);
  const Tensor stack = stack_adjacent(joined_weights(in.gate, in.up));  // [G, 2 * out, in]
  return grouped_swiglu_node(
      in, groups.row, gathered_grouped_matmul(x.data(), groups.row, stack, groups.start, true),
      [stack, groups](const Tensor& d) {
        return gathered_grouped_matmul(d, Tensor(), stack, groups.start, false);
      },
      [xd = in.xd, groups](std::vector<Tensor>& grads, const Tensor& d,
                           const std::vector<bool>& want) {
        put_stacked_weight_grads(
            grads, 1, gathered_grouped_matmul_tn(d, Tensor(), xd, groups.row, groups.start), groups,
            want);
      });
}

}  // namespace moegrad
