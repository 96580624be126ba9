// Backward rules of binary arithmetic. A broadcast input receives the gradient summed back
// to its own shape (sum_to).
#include "autograd/ops/binary.h"

#include "core/ops/binary.h"
#include "core/ops/compare.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"

namespace moegrad {

Variable add(const Variable& a, const Variable& b) {
  return make_result(add(a.data(), b.data()), "add", {a, b},
                     [sa = a.shape(), sb = b.shape()](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(),
                                                  need[1] ? sum_to(g, sb) : Tensor()};
                     });
}

Variable sub(const Variable& a, const Variable& b) {
  return make_result(sub(a.data(), b.data()), "sub", {a, b},
                     [sa = a.shape(), sb = b.shape()](const Tensor& g, const std::vector<bool>& need) {
                       return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(),
                                                  need[1] ? sum_to(neg(g), sb) : Tensor()};
                     });
}

Variable mul(const Variable& a, const Variable& b) {
  // Each operand's gradient reads only the other operand: one is kept for the backward only
  // when the other trains (an activation times a frozen scale keeps no activation).
  Tensor x = b.requires_grad() ? a.data() : Tensor(), y = a.requires_grad() ? b.data() : Tensor();
  return make_result(mul(a.data(), b.data()), "mul", {a, b},
                     [x, y, xs = a.shape(), ys = b.shape()](const Tensor& g,
                                                            const std::vector<bool>& need) {
                       return std::vector<Tensor>{need[0] ? sum_to(mul(g, y), xs) : Tensor(),
                                                  need[1] ? sum_to(mul(g, x), ys) : Tensor()};
                     });
}

Variable div(const Variable& a, const Variable& b) {
  Tensor x = a.data(), y = b.data();
  return make_result(div(x, y), "div", {a, b},
                     [x, y](const Tensor& g, const std::vector<bool>& need) {
                       Tensor ga, gb;
                       Tensor g_over_y = div(g, y);
                       if (need[0]) ga = sum_to(g_over_y, x.shape());
                       // d(x/y)/dy = -x/y^2 = -(x/y)/y
                       if (need[1]) gb = sum_to(neg(mul(g_over_y, div(x, y))), y.shape());
                       return std::vector<Tensor>{ga, gb};
                     });
}

Variable pow(const Variable& a, const Variable& b) {
  Tensor x = a.data(), y = b.data();
  Tensor out = pow(x, y);
  return make_result(out, "pow", {a, b},
                     [x, y, out](const Tensor& g, const std::vector<bool>& need) {
                       Tensor ga, gb;
                       // d/dx x^y = y x^(y-1); d/dy x^y = x^y log x
                       if (need[0]) ga = sum_to(mul(g, mul(y, pow(x, add_scalar(y, -1.0)))), x.shape());
                       if (need[1]) gb = sum_to(mul(g, mul(out, log(x))), y.shape());
                       return std::vector<Tensor>{ga, gb};
                     });
}

namespace {

// The gradient goes to the selected side; ties split it evenly, as in torch.maximum.
Variable select_binary(const Variable& a, const Variable& b, bool is_max) {
  Tensor x = a.data(), y = b.data();
  Tensor out = is_max ? maximum(x, y) : minimum(x, y);
  return make_result(out, is_max ? "maximum" : "minimum", {a, b},
                     [x, y, is_max](const Tensor& g, const std::vector<bool>& need) {
                       Tensor wins_a = is_max ? gt(x, y) : lt(x, y);
                       Tensor ties = eq(x, y);
                       Tensor wa = add(wins_a.to(g.dtype()), mul_scalar(ties.to(g.dtype()), 0.5));
                       Tensor ga, gb;
                       if (need[0]) ga = sum_to(mul(g, wa), x.shape());
                       if (need[1]) gb = sum_to(mul(g, rsub_scalar(wa, 1.0)), y.shape());
                       return std::vector<Tensor>{ga, gb};
                     });
}

}  // namespace

Variable maximum(const Variable& a, const Variable& b) { return select_binary(a, b, true); }
Variable minimum(const Variable& a, const Variable& b) { return select_binary(a, b, false); }

}  // namespace moegrad
