// Backward rules of matmul and linear. For C = op(A) op(B): dop(A) = G op(B)^T and
// dop(B) = op(A)^T G, written with transpose flags so no operand is copied to transpose it.
// A broadcast operand receives the gradient summed over the batch dims it was broadcast along.
#include "autograd/ops/matmul.h"

#include "core/ops/index.h"
#include "core/ops/matmul.h"
#include "core/ops/reduce.h"

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

namespace {

// grouped_linear of x_rows, which are x itself (index undefined) or x's rows `index`. The input
// is kept only for the weights' gradients (as in linear), and then as x: gathered rows are
// gathered again in the backward.
Variable grouped_rows_linear(const Variable& x, const Tensor& index, const Tensor& x_rows,
                             const std::vector<Variable>& w, const std::vector<int64_t>& rows) {
  std::vector<Tensor> wd;
  std::vector<Variable> inputs{x};
  bool any_weight_trains = false;
  for (const Variable& v : w) {
    wd.push_back(v.data());
    inputs.push_back(v);
    any_weight_trains |= v.requires_grad();
  }
  const Tensor xd = any_weight_trains ? x.data() : Tensor();
  return make_result(
      grouped_matmul(x_rows, wd, rows, true), "grouped_linear", inputs,
      [xd, index, wd, rows, xs = x.shape()](const Tensor& g, const std::vector<bool>& need) {
        std::vector<Tensor> grads(wd.size() + 1);
        if (need[0]) {
          const Tensor g_rows = grouped_matmul(g, wd, rows, false);
          grads[0] = index.defined()
                         ? index_add_to_zeros(xs, 0, index, g_rows, IndexBounds::Trusted)
                         : g_rows;
        }
        if (!xd.defined()) return grads;  // no weight trains
        const std::vector<bool> want(need.begin() + 1, need.end());
        const std::vector<Tensor> gw =
            grouped_matmul_tn(
                g, index.defined() ? index_select(xd, 0, index, IndexBounds::Trusted) : xd, rows,
                want);
        std::copy(gw.begin(), gw.end(), grads.begin() + 1);
        return grads;
      });
}

}  // namespace

Variable grouped_linear(const Variable& x, const std::vector<Variable>& w,
                        const std::vector<int64_t>& rows) {
  return grouped_rows_linear(x, Tensor(), x.data(), w, rows);
}

Variable grouped_linear_gathered(const Variable& x, const Tensor& index, const Tensor& x_rows,
                                 const std::vector<Variable>& w,
                                 const std::vector<int64_t>& rows) {
  MOEGRAD_CHECK(x.dim() == 2 && index.dim() == 1 &&
                    x_rows.shape() == Shape({index.size(0), x.size(1)}) &&
                    x_rows.dtype() == x.dtype(),
                "grouped_linear_gathered: x ", shape_str(x.shape()), " ", dtype_name(x.dtype()),
                ", index ", shape_str(index.shape()), " and x_rows ", shape_str(x_rows.shape()),
                " ", dtype_name(x_rows.dtype()),
                ": expected x [N, in], index [R] and x_rows [R, in] of x's dtype");
  return grouped_rows_linear(x, index, x_rows, w, rows);
}

}  // namespace moegrad
