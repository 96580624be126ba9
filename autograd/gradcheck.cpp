#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/ops/copy.h"
#include "core/random.h"

namespace moegrad {
namespace {

double projected_sum(const Tensor& y, const std::vector<double>& r) {
  std::vector<double> v = y.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * r[i];
  return s;
}

// A view of one element of `t`, to read and write it in place whatever its strides.
Tensor element(const Tensor& t, int64_t linear) {
  Shape idx(t.dim());
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    idx[d] = linear % t.size(d);
    linear /= t.size(d);
  }
  int64_t off = t.offset();
  for (int64_t d = 0; d < t.dim(); ++d) off += idx[d] * t.stride(d);
  return t.as_strided({}, {}, off);
}

}  // namespace

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opts) {
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t, is_floating(t.dtype()));
  Variable y = fn(vars);
  Generator gen(opts.seed + 12345);
  Tensor r = randn(y.shape(), gen, DType::F64, y.device());
  std::vector<double> rv = r.to_vector<double>();
  GradcheckResult res;
  if (!y.requires_grad()) {
    res.ok = false;
    res.message = "output does not require grad";
    return res;
  }
  y.backward(r.to(y.dtype()));

  double worst = -1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!is_floating(inputs[i].dtype())) continue;
    const Tensor& x = inputs[i];
    Tensor analytic = vars[i].grad().defined() ? vars[i].grad().to(DType::F64)
                                               : zeros(x.shape(), DType::F64, x.device());
    std::vector<double> a = analytic.to_vector<double>();
    // A self-overlapping view (expand) has one memory element behind several logical ones:
    // perturbing it moves all of them, which no per-element derivative describes.
    for (int64_t d = 0; d < x.dim(); ++d)
      MOEGRAD_CHECK(x.stride(d) != 0 || x.size(d) <= 1,
                    "gradcheck: input ", i, " has a zero stride; pass a contiguous copy");
    for (int64_t k = 0; k < x.numel(); ++k) {
      Tensor e = element(x, k);
      double orig = e.item();
      double lp, lm;
      {
        NoGradGuard ng;
        e.fill_(orig + opts.eps);
        lp = projected_sum(fn(vars).data(), rv);
        e.fill_(orig - opts.eps);
        lm = projected_sum(fn(vars).data(), rv);
        e.fill_(orig);
      }
      double numeric = (lp - lm) / (2 * opts.eps);
      double err = std::fabs(numeric - a[k]);
      bool bad = err > opts.atol + opts.rtol * std::fabs(numeric);
      res.max_abs_error = std::max(res.max_abs_error, err);
      if (bad && err > worst) {
        worst = err;
        res.ok = false;
        std::ostringstream os;
        os << "input " << i << " " << shape_str(x.shape()) << " element " << k
           << ": analytic " << a[k] << ", numeric " << numeric << " (error " << err << ")";
        res.message = os.str();
      }
    }
  }
  return res;
}

}  // namespace moegrad
