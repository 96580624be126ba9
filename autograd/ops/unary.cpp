// Backward rules of unary math. Each rule is written from the forward input x or output y,
// whichever is cheaper; activations use the fused activation_backward kernels.
#include "autograd/ops/unary.h"

#include "core/ops/binary.h"
#include "core/ops/compare.h"
#include "core/ops/reduce.h"
#include "core/ops/unary.h"

namespace moegrad {
namespace {

using Rule = std::function<Tensor(const Tensor& g, const Tensor& x, const Tensor& y)>;

// y = f(x) with dL/dx = rule(g, x, y).
Variable unary_with_rule(const Variable& x, Tensor y, const char* name, Rule rule) {
  Tensor xd = x.data();
  return make_result(y, name, {x}, [xd, y, rule](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{rule(g, xd, y)};
  });
}

Variable activation(const Variable& x, UnaryOp fwd, ActivationGrad bwd, const char* name) {
  Tensor xd = x.data();
  return make_result(unary(fwd, xd), name, {x}, [xd, bwd](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{activation_backward(bwd, g, xd)};
  });
}

}  // namespace

Variable neg(const Variable& x) {
  return make_result(neg(x.data()), "neg", {x},
                     [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{neg(g)}; });
}

Variable exp(const Variable& x) {
  return unary_with_rule(x, exp(x.data()), "exp",
                         [](const Tensor& g, const Tensor&, const Tensor& y) { return mul(g, y); });
}

Variable log(const Variable& x) {
  return unary_with_rule(x, log(x.data()), "log",
                         [](const Tensor& g, const Tensor& x, const Tensor&) { return div(g, x); });
}

Variable sqrt(const Variable& x) {
  // d sqrt(x) = 1 / (2 sqrt(x))
  return unary_with_rule(x, sqrt(x.data()), "sqrt", [](const Tensor& g, const Tensor&, const Tensor& y) {
    return div(mul_scalar(g, 0.5), y);
  });
}

Variable rsqrt(const Variable& x) {
  // d x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3
  return unary_with_rule(x, rsqrt(x.data()), "rsqrt", [](const Tensor& g, const Tensor&, const Tensor& y) {
    return mul(mul_scalar(g, -0.5), mul(y, square(y)));
  });
}

Variable abs(const Variable& x) {
  return unary_with_rule(x, abs(x.data()), "abs",
                         [](const Tensor& g, const Tensor& x, const Tensor&) { return mul(g, sign(x)); });
}

Variable square(const Variable& x) {
  return unary_with_rule(x, square(x.data()), "square", [](const Tensor& g, const Tensor& x, const Tensor&) {
    return mul(g, mul_scalar(x, 2.0));
  });
}

Variable tanh(const Variable& x) { return activation(x, UnaryOp::Tanh, ActivationGrad::Tanh, "tanh"); }
Variable sigmoid(const Variable& x) {
  return activation(x, UnaryOp::Sigmoid, ActivationGrad::Sigmoid, "sigmoid");
}
Variable silu(const Variable& x) { return activation(x, UnaryOp::Silu, ActivationGrad::Silu, "silu"); }
Variable relu(const Variable& x) { return activation(x, UnaryOp::Relu, ActivationGrad::Relu, "relu"); }
Variable gelu(const Variable& x) { return activation(x, UnaryOp::Gelu, ActivationGrad::Gelu, "gelu"); }

Variable add_scalar(const Variable& x, double s) {
  return make_result(add_scalar(x.data(), s), "add_scalar", {x},
                     [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
}

Variable mul_scalar(const Variable& x, double s) {
  return make_result(mul_scalar(x.data(), s), "mul_scalar", {x}, [s](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{mul_scalar(g, s)};
  });
}

Variable rsub_scalar(const Variable& x, double s) {
  return make_result(rsub_scalar(x.data(), s), "rsub_scalar", {x},
                     [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{neg(g)}; });
}

Variable pow_scalar(const Variable& x, double p) {
  return unary_with_rule(x, pow_scalar(x.data(), p), "pow_scalar",
                         [p](const Tensor& g, const Tensor& x, const Tensor&) {
                           return mul(g, mul_scalar(pow_scalar(x, p - 1.0), p));
                         });
}

Variable clamp(const Variable& x, double lo, double hi) {
  MOEGRAD_CHECK(lo <= hi, "clamp: lower bound ", lo, " exceeds upper bound ", hi);
  return unary_with_rule(x, clamp(x.data(), lo, hi), "clamp",
                         [lo, hi](const Tensor& g, const Tensor& x, const Tensor&) {
                           Tensor inside = clamp(x, lo, hi);
                           return where(eq(inside, x), g, zeros_like(g));
                         });
}

Variable where(const Tensor& cond, const Variable& a, const Variable& b) {
  Tensor out = where(cond, a.data(), b.data());
  return make_result(out, "where", {a, b},
                     [cond, sa = a.shape(), sb = b.shape()](const Tensor& g, const std::vector<bool>& need) {
                       Tensor zero = zeros({}, g.dtype(), g.device());
                       return std::vector<Tensor>{need[0] ? sum_to(where(cond, g, zero), sa) : Tensor(),
                                                  need[1] ? sum_to(where(cond, zero, g), sb) : Tensor()};
                     });
}

}  // namespace moegrad
