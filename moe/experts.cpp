#include "moe/experts.h"

#include "autograd/ops.h"
#include "core/error.h"

namespace moegrad {

OlmoeExperts::OlmoeExperts(int64_t num_experts, int64_t hidden, int64_t intermediate,
                           const InitOptions& init)
    : num_experts_(num_experts),
      gate_proj_(
          register_parameter("gate_proj", init_normal({num_experts, intermediate, hidden}, init))),
      up_proj_(
          register_parameter("up_proj", init_normal({num_experts, intermediate, hidden}, init))),
      down_proj_(register_parameter("down_proj",
                                    init_normal({num_experts, hidden, intermediate}, init))) {}

Tensor OlmoeExperts::expert_weight(int64_t expert, const std::string& proj) const {
  MOEGRAD_CHECK(expert >= 0 && expert < num_experts_, "OlmoeExperts::expert_weight: expert ",
                expert, " out of range for ", num_experts_, " experts");
  if (proj == "gate_proj") return gate_proj_.data().select(0, expert);
  if (proj == "up_proj") return up_proj_.data().select(0, expert);
  if (proj == "down_proj") return down_proj_.data().select(0, expert);
  throw Error("OlmoeExperts::expert_weight: unknown projection '" + proj +
              "' (gate_proj, up_proj or down_proj)");
}

Variable OlmoeExperts::forward(const Variable& x, const Variable& weights,
                               const Tensor& indices) const {
  MOEGRAD_CHECK(x.dim() == 2 && x.size(1) == gate_proj_.size(2), "OlmoeExperts: input ",
                shape_str(x.shape()), " must be [N, ", gate_proj_.size(2), "]");
  MOEGRAD_CHECK(
      indices.dim() == 2 && indices.size(0) == x.size(0) && weights.shape() == indices.shape(),
      "OlmoeExperts: weights ", shape_str(weights.shape()), " and indices ",
      shape_str(indices.shape()), " must both be [N, k] with N = ", x.size(0));
  const int64_t n = x.size(0), k = indices.size(1), a = n * k;
  if (a == 0) return Variable(zeros(x.shape(), x.dtype(), x.device()));
  const std::vector<int64_t> expert_of = indices.to_vector<int64_t>();

  // Counting sort of the assignments by expert; stable, so a token's rows keep their order
  // and the result does not depend on anything but the routing.
  std::vector<int64_t> counts(size_t(num_experts_), 0);
  for (int64_t e : expert_of) {
    MOEGRAD_CHECK(e >= 0 && e < num_experts_, "OlmoeExperts: expert index ", e,
                  " out of range for ", num_experts_, " experts");
    ++counts[size_t(e)];
  }
  std::vector<int64_t> start(size_t(num_experts_) + 1, 0);
  for (size_t e = 0; e < counts.size(); ++e) start[e + 1] = start[e] + counts[e];
  std::vector<int64_t> order(static_cast<size_t>(a)), token(static_cast<size_t>(a));
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < a; ++i) {
    int64_t pos = next[size_t(expert_of[size_t(i)])]++;
    order[size_t(pos)] = i;
    token[size_t(pos)] = i / k;
  }
  const Tensor order_t = from_vector(order, {a}).to(x.device());
  const Tensor token_t = from_vector(token, {a}).to(x.device());

  const Variable rows = index_select(x, 0, token_t);  // [A, H], grouped by expert
  std::vector<Variable> outs;
  for (int64_t e = 0; e < num_experts_; ++e) {
    if (counts[size_t(e)] == 0) continue;
    Variable xe = narrow(rows, 0, start[size_t(e)], counts[size_t(e)]);
    Variable g = matmul(xe, select(gate_proj_, 0, e), false, true);
    Variable u = matmul(xe, select(up_proj_, 0, e), false, true);
    outs.push_back(matmul(silu(g) * u, select(down_proj_, 0, e), false, true));
  }
  Variable w = unsqueeze(index_select(reshape(weights, {a}), 0, order_t), 1);  // [A, 1]
  Variable combined = concat(outs, 0) * w;
  return index_add(Variable(zeros({n, x.size(1)}, x.dtype(), x.device())), 0, token_t, combined);
}

}  // namespace moegrad
