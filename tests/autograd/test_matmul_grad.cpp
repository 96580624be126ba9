#include <functional>

#include "autograd/ops/binary.h"
#include "autograd/ops/index.h"
#include "autograd/ops/matmul.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/swiglu.h"
#include "core/ops/index.h"
#include "core/ops/join.h"
#include "core/ops/matmul.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::expect_error;
using testing::random_tensor;

Shape mat(bool trans, int64_t rows, int64_t cols) {
  return trans ? Shape{cols, rows} : Shape{rows, cols};
}

TEST(MatmulGrad, AllTransposeCombinationsAndOddSizes) {
  const int64_t sizes[][3] = {{1, 1, 1}, {3, 4, 2}, {1, 3, 5}, {4, 1, 3}};
  uint64_t seed = 1;
  for (const auto& s : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Tensor a = random_tensor(mat(ta, s[0], s[1]), seed++);
        Tensor b = random_tensor(mat(tb, s[1], s[2]), seed++);
        SCOPED_TRACE(::testing::Message()
                     << "M K N " << s[0] << " " << s[1] << " " << s[2] << " trans " << ta << tb);
        EXPECT_GRADCHECK([ta, tb](const auto& v) { return matmul(v[0], v[1], ta, tb); }, {a, b});
      }
}

TEST(MatmulGrad, NonContiguousInputs) {
  Tensor col_major = random_tensor({4, 3}, 10).t();                 // [3, 4]
  Tensor padded = random_tensor({4, 6}, 11).narrow(1, 1, 2);        // [4, 2]
  Tensor strided_cols = random_tensor({3, 4, 2}, 12).select(2, 0);  // [3, 4], copied for BLAS
  EXPECT_GRADCHECK([](const auto& v) { return matmul(v[0], v[1]); }, {col_major, padded});
  EXPECT_GRADCHECK([](const auto& v) { return matmul(v[0], v[1], false, true); },
                   {strided_cols, col_major});
}

TEST(MatmulGrad, BatchedWithBroadcasting) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const Case cases[] = {
      {{2, 3, 4}, {4, 2}, false, false},  // a weight shared by the batch
      {{2, 3, 4}, {2, 4}, false, true},   // ... as [N, K]
      {{2, 4, 3}, {4, 2}, true, false},   // ... with a transposed batch
      {{2, 4, 3}, {2, 4}, true, true},
      {{3, 4}, {2, 4, 2}, false, false},  // a shared by the batch
      {{3, 4}, {2, 2, 3}, true, true},
      {{2, 1, 3, 2}, {1, 2, 2, 3}, false, false},  // both broadcast
      {{2, 2, 3, 2}, {2, 2, 3, 2}, false, true},   // attention scores q k^T
  };
  uint64_t seed = 20;
  for (const Case& c : cases) {
    Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
    SCOPED_TRACE(::testing::Message()
                 << shape_str(c.a) << " x " << shape_str(c.b) << " trans " << c.ta << c.tb);
    EXPECT_GRADCHECK([&c](const auto& v) { return matmul(v[0], v[1], c.ta, c.tb); }, {a, b});
  }
}

TEST(MatmulGrad, NonContiguousBatch) {
  Tensor a = random_tensor({3, 2, 4}, 30).transpose(0, 1);  // [2, 3, 4], rows not stackable
  Tensor b = random_tensor({2, 4}, 31);
  EXPECT_GRADCHECK([](const auto& v) { return matmul(v[0], v[1], false, true); }, {a, b});
}

TEST(MatmulGrad, SameInputTwice) {
  Tensor a = random_tensor({3, 4}, 40);
  EXPECT_GRADCHECK([](const auto& v) { return matmul(v[0], v[0], false, true); }, {a});
  Tensor s = random_tensor({2, 3, 3}, 41);
  EXPECT_GRADCHECK([](const auto& v) { return matmul(v[0], v[0]); }, {s});
}

TEST(MatmulGrad, EmptyInnerDimGivesEmptyGradients) {
  Variable a(random_tensor({3, 0}, 50), true), b(random_tensor({0, 4}, 51), true);
  matmul(a, b).backward(ones({3, 4}, DType::F64));
  EXPECT_EQ(a.grad().shape(), (Shape{3, 0}));
  EXPECT_EQ(b.grad().shape(), (Shape{0, 4}));
}

TEST(MatmulGrad, Linear) {
  Tensor w = random_tensor({3, 4}, 60);
  EXPECT_GRADCHECK([](const auto& v) { return linear(v[0], v[1]); },
                   {random_tensor({2, 2, 4}, 61), w});
  EXPECT_GRADCHECK([](const auto& v) { return linear(v[0], v[1]); }, {random_tensor({4}, 62), w});
  Tensor x_t = random_tensor({4, 2}, 63).t();  // [2, 4], transposed
  EXPECT_GRADCHECK([](const auto& v) { return linear(v[0], v[1]); }, {x_t, w});
}

TEST(MatmulGrad, GroupedLinear) {
  const std::vector<int64_t> rows = {2, 0, 3, 1};  // the empty group's weight gets zeros
  std::vector<Tensor> in = {random_tensor({6, 3}, 70)};
  for (uint64_t s = 71; s < 75; ++s) in.push_back(random_tensor({2, 3}, s));
  EXPECT_GRADCHECK(
      [&rows](const auto& v) {
        return grouped_linear(v[0], {v[1], v[2], v[3], v[4]}, rows);
      },
      in);
  Tensor x_t = random_tensor({3, 6}, 76).t();  // [6, 3], transposed
  in[0] = x_t;
  EXPECT_GRADCHECK(
      [&rows](const auto& v) {
        return grouped_linear(v[0], {v[1], v[2], v[3], v[4]}, rows);
      },
      in);
}

TEST(MatmulGrad, GroupedLinearLeavesFrozenWeightsWithoutGradient) {
  Variable x(random_tensor({4, 3}, 80), true);
  Variable trained(random_tensor({2, 3}, 81), true), frozen(random_tensor({2, 3}, 82), false),
      idle(random_tensor({2, 3}, 83), true);
  sum(grouped_linear(x, {trained, frozen, idle}, {1, 3, 0})).backward();
  EXPECT_TRUE(trained.grad().defined());
  EXPECT_FALSE(frozen.grad().defined());
  EXPECT_ALL_CLOSE(idle.grad(), zeros({2, 3}, DType::F64), 0, 0);
  EXPECT_TRUE(x.grad().defined());
}

// bf16 Variables: the gradients are bf16 and match the f32 backward on the same (rounded)
// values. grads_in runs fn on leaves of `inputs` cast to dt, with upstream gradient g.
std::vector<Tensor> grads_in(DType dt, const std::vector<Tensor>& inputs, const Tensor& g,
                             const std::function<Variable(const std::vector<Variable>&)>& fn) {
  std::vector<Variable> leaves;
  for (const Tensor& t : inputs) leaves.emplace_back(t.to(dt), true);
  fn(leaves).backward(g.to(dt));
  std::vector<Tensor> out;
  for (const Variable& v : leaves) out.push_back(v.grad());
  return out;
}

void expect_bf16_grads(const std::vector<Tensor>& inputs, const Tensor& g,
                       const std::function<Variable(const std::vector<Variable>&)>& fn,
                       double atol = 1e-2) {
  std::vector<Tensor> bf = grads_in(DType::BF16, inputs, g, fn);
  std::vector<Tensor> f32 = grads_in(DType::F32, inputs, g, fn);
  for (size_t i = 0; i < bf.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "input " << i);
    ASSERT_TRUE(bf[i].defined());
    EXPECT_EQ(bf[i].dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(bf[i].to(DType::F32), f32[i], atol, 1e-2);
  }
}

TEST(MatmulGradBf16, MatmulLinearAndGroupedLinear) {
  auto bf = [](const Shape& s, uint64_t seed) { return random_tensor(s, seed, DType::BF16); };
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans " << ta << tb);
      Tensor a = bf(ta ? Shape{13, 9} : Shape{9, 13}, 40),
             b = bf(tb ? Shape{7, 13} : Shape{13, 7}, 41);
      expect_bf16_grads({a, b}, bf({9, 7}, 42),
                        [=](const auto& v) { return matmul(v[0], v[1], ta, tb); });
    }
  // A batched matmul, a broadcast first operand (its gradient summed over the batch) and
  // linear over [B, T, in].
  expect_bf16_grads({bf({2, 5, 3}, 43), bf({2, 3, 4}, 44)}, bf({2, 5, 4}, 45),
                    [](const auto& v) { return matmul(v[0], v[1]); });
  expect_bf16_grads({bf({5, 3}, 54), bf({2, 3, 4}, 55)}, bf({2, 5, 4}, 56),
                    [](const auto& v) { return matmul(v[0], v[1]); });
  expect_bf16_grads({bf({2, 3, 5}, 46), bf({4, 5}, 47)}, bf({2, 3, 4}, 48),
                    [](const auto& v) { return linear(v[0], v[1]); });
  const std::vector<int64_t> rows = {3, 0, 5};
  expect_bf16_grads({bf({8, 5}, 49), bf({3, 5}, 50), bf({3, 5}, 51), bf({3, 5}, 52)},
                    bf({8, 3}, 53), [&](const auto& v) {
                      return grouped_linear(v[0], {v[1], v[2], v[3]}, rows);
                    });
  // The experts' node: rows gathered twice, gate and up joined, a scale a row.
  const Tensor index = from_vector<int64_t>({2, 0, 2, 1, 3, 0, 4, 1}, {8});
  expect_bf16_grads(
      {bf({5, 5}, 57), bf({3, 5}, 58), bf({3, 5}, 59), bf({3, 5}, 60), bf({3, 5}, 61),
       bf({3, 5}, 62), bf({3, 5}, 63), bf({8, 1}, 65)},
      bf({8, 3}, 64),
      [&](const auto& v) {
        return grouped_swiglu_gathered(v[0], index, index_select(v[0].data(), 0, index),
                                       {v[1], v[2], v[3]}, {v[4], v[5], v[6]}, rows, v[7]);
      });
}

// A frozen weight keeps no activation for the backward (the input is only for the weight's
// gradient), and the input's gradient still flows. use_count: the caller's handle and x's.
TEST(MatmulGrad, FrozenWeightsKeepNoInput) {
  const Tensor xt = random_tensor({6, 5}, 60), w0 = random_tensor({3, 5}, 61),
               w1 = random_tensor({3, 5}, 62), g = random_tensor({6, 3}, 63);
  Variable x(xt, true);
  Variable y = linear(x, Variable(w0));
  EXPECT_EQ(xt.storage().use_count(), 2);
  y.backward(g);
  EXPECT_ALL_CLOSE(x.grad(), matmul(g, w0));

  Variable xg(xt, true);
  Variable yg = grouped_linear(xg, {Variable(w0), Variable(w1)}, {2, 4});
  EXPECT_EQ(xt.storage().use_count(), 3);  // + xg
  yg.backward(g);
  EXPECT_ALL_CLOSE(xg.grad(),
                   concat({matmul(g.narrow(0, 0, 2), w0), matmul(g.narrow(0, 2, 4), w1)}, 0));

  // One trained weight: the input is kept for its gradient.
  Variable xk(xt, true);
  Variable yk = linear(xk, Variable(w0, true));
  EXPECT_EQ(xt.storage().use_count(), 5);  // + xk + the node's copy
}

// grouped_swiglu_gathered is swiglu of two grouped_linear of index_select(x, 0, index), times
// a scale a row, gradients included (a row gathered twice sums both gradients); it keeps x, not
// the gathered rows, and with every weight frozen not even x.
TEST(MatmulGrad, GroupedSwigluGathered) {
  const Tensor index = from_vector<int64_t>({2, 0, 2, 1, 3, 0}, {6});
  const std::vector<int64_t> rows = {2, 0, 4};
  EXPECT_GRADCHECK(
      [&](const auto& v) {
        return grouped_swiglu_gathered(v[0], index, index_select(v[0].data(), 0, index),
                                       {v[1], v[2], v[3]}, {v[4], v[5], v[6]}, rows, v[7]);
      },
      {random_tensor({4, 5}, 70), random_tensor({3, 5}, 71), random_tensor({3, 5}, 72),
       random_tensor({3, 5}, 73), random_tensor({3, 5}, 77), random_tensor({3, 5}, 78),
       random_tensor({3, 5}, 79), random_tensor({6, 1}, 69)});
  const Tensor xt = random_tensor({4, 5}, 74), w0 = random_tensor({3, 5}, 75),
               u0 = random_tensor({3, 5}, 80), s0 = random_tensor({6, 1}, 81),
               g = random_tensor({6, 3}, 76);
  const Tensor x_rows = index_select(xt, 0, index);
  // Gate: trained, frozen, trained; up: frozen, trained, frozen.
  Variable x(xt, true), w(w0, true), wf(w0, true), u(u0, true), s(s0, true), xr(x_rows, true);
  const std::vector<Variable> gate = {w, Variable(w0), wf}, up = {Variable(u0), u, Variable(u0)};
  Variable y = grouped_swiglu_gathered(x, index, x_rows, gate, up, rows, s);
  EXPECT_EQ(x_rows.storage().use_count(), 2);  // the caller's and xr's: the node has none
  Variable ref = swiglu(grouped_linear(xr, gate, rows), grouped_linear(xr, up, rows)) * s;
  EXPECT_ALL_CLOSE(y.data(), ref.data(), 0, 0);
  y.backward(g);
  const Tensor w_grad = w.grad().clone(), wf_grad = wf.grad().clone(), u_grad = u.grad().clone(),
               s_grad = s.grad().clone();
  w.zero_grad();
  wf.zero_grad();
  u.zero_grad();
  s.zero_grad();
  ref.backward(g);
  EXPECT_ALL_CLOSE(w_grad, w.grad(), 0, 0);
  EXPECT_ALL_CLOSE(wf_grad, wf.grad(), 0, 0);
  EXPECT_ALL_CLOSE(u_grad, u.grad(), 0, 0);
  EXPECT_ALL_CLOSE(s_grad, s.grad(), 1e-14, 1e-14);
  const Tensor x_grad = index_add(zeros({4, 5}, DType::F64), 0, index, xr.grad());
  EXPECT_ALL_CLOSE(x.grad(), x_grad, 1e-12, 1e-12);

  Variable xo(xt, true);
  Variable yo =
      grouped_swiglu_gathered(xo, index, x_rows, {Variable(w0), Variable(w0), Variable(w0)},
                              {Variable(u0), Variable(u0), Variable(u0)}, rows, Variable(s0));
  EXPECT_EQ(xt.storage().use_count(), 3);  // the caller's, x's, xo's: the node keeps no input
  yo.backward(g);
  EXPECT_ALL_CLOSE(xo.grad(), x_grad, 1e-12, 1e-12);

  // Gate and up back to back in one storage (OlmoeExperts' layout): the node runs them as one
  // weight viewed in place, with the same results, and holds the six weights, nothing joined.
  const Tensor both = stack({stack({w0, w0, w0}), stack({u0, u0, u0})}, 1);  // [3, 2, 3, 5]
  std::vector<Variable> gate_in_place, up_in_place;
  for (int64_t e = 0; e < 3; ++e) {
    gate_in_place.emplace_back(both.select(0, e).select(0, 0), true);
    up_in_place.emplace_back(both.select(0, e).select(0, 1), true);
  }
  Variable xp(xt, true);
  const int64_t before = both.storage().use_count();
  Variable yp =
      grouped_swiglu_gathered(xp, index, x_rows, gate_in_place, up_in_place, rows, Variable(s0));
  EXPECT_EQ(both.storage().use_count(), before + 6);
  EXPECT_ALL_CLOSE(yp.data(), ref.data(), 0, 0);
  yp.backward(g);
  EXPECT_ALL_CLOSE(gate_in_place[0].grad(), w.grad(), 0, 0);
  EXPECT_ALL_CLOSE(up_in_place[1].grad(), u.grad(), 0, 0);
  EXPECT_ALL_CLOSE(xp.grad(), x_grad, 1e-12, 1e-12);

  expect_error([&] { grouped_swiglu_gathered(x, index, xt, {w}, {u}, {6}, s); },
               "grouped_swiglu_gathered: x [4, 5] float64, index [6] and x_rows [4, 5] float64: "
               "expected x [N, in], index [R] and x_rows [R, in] of x's dtype");
  expect_error(
      [&] {
        grouped_swiglu_gathered(x, index, x_rows, {w}, {u, u}, {6}, s);
      },
      "grouped_swiglu_gathered: 1 gate weights but 2 up weights");
  expect_error([&] { grouped_swiglu_gathered(x, index, x_rows, {w}, {Variable(xt)}, {6}, s); },
               "grouped_swiglu_gathered: group 0's gate weight [3, 5] and up weight [4, 5] differ "
               "in shape");
}

// The forms that take the groups as group_by_index_on_device leaves them: the same values and
// gradients as the forms with host row counts (on the CPU they run the same GEMMs), except that
// a weight whose group has no rows gets no gradient instead of zeros. grouped_linear_index_add
// against grouped_linear and then index_add_to_zeros, as two nodes.
TEST(MatmulGrad, GroupedLinearIndexAddOnDeviceGroups) {
  // Four tokens' two choices each, of experts 0, 2 and 3 (expert 1 gets none, token 2 expert 2
  // twice): grouped, 3, 0, 3 and 2 rows, of tokens 0 1 3, -, 0 2 2, 1 3.
  const DeviceIndexGroups groups = group_by_index_on_device(
      from_vector<int64_t>({0, 2, 3, 0, 2, 2, 3, 0}, {4, 2}), 4, "experts");
  const std::vector<int64_t> rows = {3, 0, 3, 2};
  std::vector<Tensor> in = {random_tensor({8, 3}, 90)};
  for (uint64_t s = 91; s < 95; ++s) in.push_back(random_tensor({2, 3}, s));
  EXPECT_GRADCHECK(
      [&](const auto& v) {
        return grouped_linear_index_add(v[0], {v[1], v[2], v[3], v[4]}, groups);
      },
      in);

  std::vector<Variable> dev, host;
  for (const Tensor& t : in) {
    dev.emplace_back(t, true);
    host.emplace_back(t, true);
  }
  const Tensor g = random_tensor({4, 2}, 95);
  Variable y = grouped_linear_index_add(dev[0], {dev[1], dev[2], dev[3], dev[4]}, groups);
  Variable ref = index_add_to_zeros(
      {4, 2}, 0, groups.row, grouped_linear(host[0], {host[1], host[2], host[3], host[4]}, rows));
  EXPECT_ALL_CLOSE(y.data(), ref.data(), 0, 0);
  y.backward(g);
  ref.backward(g);
  for (size_t i : {0, 1, 3, 4}) EXPECT_ALL_CLOSE(dev[i].grad(), host[i].grad(), 0, 0) << i;
  EXPECT_FALSE(dev[2].grad().defined());

  // A frozen weight gets none either, and the input still gets its gradient.
  Variable x(in[0], true), trained(in[1], true), frozen(in[3], false);
  grouped_linear_index_add(x, {trained, Variable(in[2], true), frozen, Variable(in[4])}, groups)
      .backward(g);
  EXPECT_ALL_CLOSE(trained.grad(), host[1].grad(), 0, 0);
  EXPECT_FALSE(frozen.grad().defined());
  EXPECT_ALL_CLOSE(x.grad(), host[0].grad(), 0, 0);
  expect_error([&] { grouped_linear_index_add(x, std::vector<Variable>{}, groups); },
               "grouped_linear_index_add: expected at least one weight");
  expect_error(
      [&] { grouped_linear_index_add(Variable(in[0].narrow(0, 0, 6)), {trained}, groups); },
      "grouped_linear_index_add: x [6, 3]: expected [8, in], a row for each grouped entry");
}

TEST(MatmulGrad, GroupedSwigluGatheredOnDeviceGroups) {
  // Six assignments of four tokens to experts 0 and 2 (expert 1 gets none).
  const DeviceIndexGroups groups =
      group_by_index_on_device(from_vector<int64_t>({2, 0, 2, 2, 0, 2}, {3, 2}), 3, "experts");
  const std::vector<int64_t> rows = {2, 0, 4};
  EXPECT_GRADCHECK(
      [&](const auto& v) {
        return grouped_swiglu_gathered(v[0], groups, {v[1], v[2], v[3]}, {v[4], v[5], v[6]}, v[7]);
      },
      {random_tensor({3, 5}, 100), random_tensor({3, 5}, 101), random_tensor({3, 5}, 102),
       random_tensor({3, 5}, 103), random_tensor({3, 5}, 104), random_tensor({3, 5}, 105),
       random_tensor({3, 5}, 106), random_tensor({6, 1}, 107)});

  // Against the host form, with the weights laid out as OlmoeExperts lays them out ([E, 2, I, H],
  // viewed as one stack): gate trained, frozen, trained; up frozen, trained, frozen.
  const Tensor xt = random_tensor({3, 5}, 108), s0 = random_tensor({6, 1}, 109),
               g = random_tensor({6, 3}, 110), both = random_tensor({3, 2, 3, 5}, 111);
  auto leaves = [&](std::vector<Variable>& gate, std::vector<Variable>& up) {
    for (int64_t e = 0; e < 3; ++e) {
      gate.emplace_back(both.select(0, e).select(0, 0), e != 1);
      up.emplace_back(both.select(0, e).select(0, 1), e == 1);
    }
  };
  std::vector<Variable> gate, up, gate_ref, up_ref;
  leaves(gate, up);
  leaves(gate_ref, up_ref);
  Variable x(xt, true), s(s0, true), x_ref(xt, true), s_ref(s0, true);
  Variable y = grouped_swiglu_gathered(x, groups, gate, up, s);
  Variable ref = grouped_swiglu_gathered(x_ref, groups.row, index_select(xt, 0, groups.row),
                                         gate_ref, up_ref, rows, s_ref);
  EXPECT_ALL_CLOSE(y.data(), ref.data(), 0, 0);
  y.backward(g);
  ref.backward(g);
  EXPECT_ALL_CLOSE(x.grad(), x_ref.grad(), 0, 0);
  EXPECT_ALL_CLOSE(s.grad(), s_ref.grad(), 0, 0);
  EXPECT_ALL_CLOSE(gate[0].grad(), gate_ref[0].grad(), 0, 0);
  EXPECT_ALL_CLOSE(gate[2].grad(), gate_ref[2].grad(), 0, 0);
  EXPECT_FALSE(gate[1].grad().defined());
  EXPECT_FALSE(up[1].grad().defined());  // trained, but expert 1 had no rows
  EXPECT_FALSE(up[0].grad().defined());

  expect_error([&] { grouped_swiglu_gathered(Variable(zeros({6})), groups, gate, up, s); },
               "grouped_swiglu_gathered: x [6]: expected [N, in]");
  expect_error([&] { grouped_swiglu_gathered(x, groups, gate, {up[0]}, s); },
               "grouped_swiglu_gathered: 3 gate weights but 1 up weights");
}

}  // namespace
}  // namespace moegrad
