// Backward rules of matmul and linear. For C = op(A) op(B): dop(A) = G op(B)^T and
// dop(B) = op(A)^T G, written with transpose flags so no operand is copied to transpose it.
// A broadcast operand receives the gradient summed over the batch dims it was broadcast along.
#include "autograd/ops/matmul.h"

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

Variable grouped_linear(const Variable& x, const std::vector<Variable>& w,
                        const std::vector<int64_t>& rows) {
  std::vector<Tensor> wd;
  std::vector<Variable> inputs{x};
  bool any_weight_trains = false;
  for (const Variable& v : w) {
    wd.push_back(v.data());
    inputs.push_back(v);
    any_weight_trains |= v.requires_grad();
  }
  // The input is kept only for the weights' gradients (as in linear).
  const Tensor xd = any_weight_trains ? x.data() : Tensor();
  return make_result(grouped_matmul(x.data(), wd, rows, true), "grouped_linear", inputs,
                     [xd, wd, rows](const Tensor& g, const std::vector<bool>& need) {
                       const std::vector<bool> want(need.begin() + 1, need.end());
                       std::vector<Tensor> grads{need[0] ? grouped_matmul(g, wd, rows, false)
                                                         : Tensor()};
                       if (!xd.defined()) {  // no weight trains
                         grads.resize(wd.size() + 1);
                         return grads;
                       }
                       for (Tensor& gw : grouped_matmul_tn(g, xd, rows, want))
                         grads.push_back(gw);
                       return grads;
                     });
}

}  // namespace moegrad
