#include "moe/experts.h"

#include <utility>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/error.h"
#include "core/ops/index.h"
#include "core/ops/join.h"
#include "core/profiler.h"

namespace moegrad {

ExpertGemm expert_gemm_from_string(const std::string& name) {
  if (name == "grouped") return ExpertGemm::Grouped;
  if (name == "gathered") return ExpertGemm::Gathered;
  throw Error("experts' GEMM '" + name + "': expected grouped or gathered");
}

OlmoeExpert::OlmoeExpert(Tensor gate, Tensor up, Tensor down)
    : gate_proj_(register_module("gate_proj", std::make_shared<Linear>(std::move(gate)))),
      up_proj_(register_module("up_proj", std::make_shared<Linear>(std::move(up)))),
      down_proj_(register_module("down_proj", std::make_shared<Linear>(std::move(down)))) {}

Linear& OlmoeExpert::proj(const std::string& proj) const {
  if (proj == "gate_proj") return *gate_proj_;
  if (proj == "up_proj") return *up_proj_;
  if (proj == "down_proj") return *down_proj_;
  throw Error("OlmoeExpert: unknown projection '" + proj + "' (gate_proj, up_proj or down_proj)");
}

OlmoeExperts::OlmoeExperts(int64_t num_experts, int64_t hidden, int64_t intermediate,
                           const InitOptions& init) {
  MOEGRAD_CHECK(num_experts > 0, "OlmoeExperts: num_experts must be positive, got ", num_experts);
  // Two allocations carved into per-expert parameters, so that each expert's gradient is its
  // own [I, H] / [H, I] tensor while the stacks stay usable whole: gate_up [E, 2, I, H] (drawn
  // as the gate stack, then the up stack) and down [E, H, I].
  const Tensor gate_up = moegrad::stack({init_normal({num_experts, intermediate, hidden}, init),
                                         init_normal({num_experts, intermediate, hidden}, init)},
                                        1);
  const Tensor down = init_normal({num_experts, hidden, intermediate}, init);
  for (int64_t e = 0; e < num_experts; ++e)
    experts_.push_back(register_module(
        std::to_string(e),
        std::make_shared<OlmoeExpert>(gate_up.select(0, e).select(0, 0),
                                      gate_up.select(0, e).select(0, 1), down.select(0, e))));
}

OlmoeExpert& OlmoeExperts::expert(int64_t e) const {
  MOEGRAD_CHECK(e >= 0 && e < num_experts(), "OlmoeExperts: expert ", e, " out of range for ",
                num_experts(), " experts");
  return *experts_[size_t(e)];
}

Tensor OlmoeExperts::expert_weight(int64_t e, const std::string& proj) const {
  return expert(e).proj(proj).weight().data();
}

Tensor OlmoeExperts::stack(const std::string& proj) const {
  const Tensor first = expert_weight(0, proj);
  // gate and up interleave: an expert's slot is both, twice its weight's size.
  const int64_t slot = (proj == "down_proj" ? 1 : 2) * first.numel();
  for (int64_t e = 1; e < num_experts(); ++e) {
    const Tensor w = expert_weight(e, proj);
    MOEGRAD_CHECK(w.shares_storage(first) && w.offset() == first.offset() + e * slot &&
                      w.shape() == first.shape() && w.strides() == first.strides(),
                  "OlmoeExperts: expert ", e, "'s ", proj,
                  " weight no longer views its slot of the stacked weights");
  }
  return Tensor(first.storage(), {num_experts(), first.size(0), first.size(1)},
                {slot, first.stride(0), first.stride(1)}, first.offset(), first.dtype());
}

bool OlmoeExperts::trains(int64_t e) const {
  const OlmoeExpert& ex = *experts_[size_t(e)];
  return ex.gate_proj().weight().requires_grad() || ex.up_proj().weight().requires_grad() ||
         ex.down_proj().weight().requires_grad();
}

Variable OlmoeExperts::forward(const Variable& x, const Variable& weights,
                               const Tensor& indices) const {
  profiler::ModuleScope scope(this);
  const int64_t hidden = experts_[0]->gate_proj().weight().size(1);
  MOEGRAD_CHECK(x.dim() == 2 && x.size(1) == hidden, "OlmoeExperts: input ", shape_str(x.shape()),
                " must be [N, ", hidden, "]");
  MOEGRAD_CHECK(
      indices.dim() == 2 && indices.size(0) == x.size(0) && weights.shape() == indices.shape(),
      "OlmoeExperts: weights ", shape_str(weights.shape()), " and indices ",
      shape_str(indices.shape()), " must both be [N, k] with N = ", x.size(0));
  if (indices.numel() == 0) return Variable(zeros(x.shape(), x.dtype(), x.device()));
  bool gathered = gemm_ == ExpertGemm::Gathered;
  for (int64_t e = 1; e < num_experts() && gathered; ++e) gathered = trains(e) == trains(0);
  return gathered ? forward_gathered(x, weights, indices) : forward_grouped(x, weights, indices);
}

Variable OlmoeExperts::forward_gathered(const Variable& x, const Variable& weights,
                                        const Tensor& indices) const {
  // The assignments grouped by expert on the device, stably (as in forward_grouped); the host
  // reads the counts only in the backward, or now when the profiler records them.
  const DeviceIndexGroups by_expert =
      group_by_index_on_device(indices, num_experts(), "OlmoeExperts' experts");
  if (profiler::enabled()) profiler::record_expert_tokens(group_sizes(by_expert.host_start()));
  std::vector<Variable> gate, up, down;
  for (const auto& ex : experts_) {
    gate.push_back(ex->gate_proj().weight());
    up.push_back(ex->up_proj().weight());
    down.push_back(ex->down_proj().weight());
  }
  const Variable routed =
      index_select(reshape(weights, {indices.numel()}), 0, by_expert.order, IndexBounds::Trusted);
  const Variable w = moegrad::to(unsqueeze(routed, 1), x.dtype());
  const Variable h = grouped_swiglu_gathered(x, by_expert, gate, up, w);
  return grouped_linear_index_add(h, down, by_expert);
}

Variable OlmoeExperts::forward_grouped(const Variable& x, const Variable& weights,
                                       const Tensor& indices) const {
  const int64_t n = x.size(0), k = indices.size(1), a = n * k;
  // The assignments grouped by expert, stably, so a token's rows keep their order and the
  // result depends on nothing but the routing. On a GPU the sort stays on the device and only
  // the counts come back.
  const IndexGroups by_expert = group_by_index(indices, num_experts(), "OlmoeExperts' experts");
  const std::vector<int64_t>& start = by_expert.start;
  const std::vector<int64_t> counts = group_sizes(start);
  profiler::record_expert_tokens(counts);

  // Only the rows whose gradient something needs are computed in the graph: all of them when
  // the input or the routing weights train, else the rows of experts with a trained weight
  // (a selective adaptation's first trained layer: the rest of its rows keep nothing).
  const bool input_trains = GradMode::enabled() && (x.requires_grad() || weights.requires_grad());
  std::vector<int64_t> traced, untraced;
  for (int64_t e = 0; e < num_experts(); ++e) {
    if (counts[size_t(e)] == 0) continue;  // runs nothing, so gets no gradient (as in HF)
    (input_trains || trains(e) ? traced : untraced).push_back(e);
  }
  const bool split = !traced.empty() && !untraced.empty();
  // The experts `group` (ascending) over their rows, grouped by expert: the weighted outputs
  // [rows, H] and the token of each row. Unsplit, the group's rows are all of order/token.
  auto run = [&](const std::vector<int64_t>& group) -> std::pair<Variable, Tensor> {
    std::vector<int64_t> rows, positions;
    std::vector<Variable> gate, up, down;
    for (int64_t e : group) {
      const OlmoeExpert& ex = *experts_[size_t(e)];
      rows.push_back(counts[size_t(e)]);
      gate.push_back(ex.gate_proj().weight());
      up.push_back(ex.up_proj().weight());
      down.push_back(ex.down_proj().weight());
      for (int64_t p = start[size_t(e)]; split && p < start[size_t(e) + 1]; ++p)
        positions.push_back(p);
    }
    // The group's assignments and their tokens: built in range (tokens < n, assignments < a),
    // so the index ops need not check them; on a GPU each check would wait for the device.
    Tensor order_t = by_expert.order, token_t = by_expert.row;
    if (split) {
      const Tensor pos = from_vector(positions, {int64_t(positions.size())}).to(x.device());
      order_t = index_select(order_t, 0, pos, IndexBounds::Trusted);
      token_t = index_select(token_t, 0, pos, IndexBounds::Trusted);
    }
    // [r, 1], in the activations' dtype (the router's weights are f32 under mixed precision).
    const Variable routed = index_select(reshape(weights, {a}), 0, order_t, IndexBounds::Trusted);
    const Variable w = moegrad::to(unsqueeze(routed, 1), x.dtype());
    // [r, H]: one gather for both projections, and the graph keeps x, not these up to top-k
    // times larger rows.
    const Tensor x_rows = index_select(x.data(), 0, token_t, IndexBounds::Trusted);
    // Each row is weighted before the down projection ((w h) W^T = w (h W^T)): w's gradient
    // then reads [r, I] rows (the SwiGLU, recomputed from the projections the node keeps), not
    // the [r, H] output.
    const Variable h = grouped_swiglu_gathered(x, token_t, x_rows, gate, up, rows, w);
    return {grouped_linear(h, down, rows), token_t};
  };
  auto [combined, token_t] = run(traced.empty() ? untraced : traced);
  if (split) {
    std::pair<Variable, Tensor> rest;
    {
      NoGradGuard no_grad;
      rest = run(untraced);
    }
    // One index_add over all rows: each token's sum is rounded once, as on the single path.
    combined = concat({combined, rest.first}, 0);
    token_t = concat({token_t, rest.second}, 0);
  }
  return index_add_to_zeros({n, x.size(1)}, 0, token_t, combined, IndexBounds::Trusted);
}

}  // namespace moegrad
