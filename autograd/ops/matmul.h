// Differentiable matrix multiplication (2-D and batched with broadcast batch dims), linear, and
// the row-grouped linear of MoE experts.
#pragma once
#include <vector>

#include "autograd/variable.h"
#include "core/ops/index.h"

namespace moegrad {

// op(a) @ op(b), as the Tensor matmul in core/ops/matmul.h.
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
// x [..., in] @ w^T for w [out, in].
Variable linear(const Variable& x, const Variable& w);
// x [R, in] in consecutive row groups of rows[g] rows, group g through its own w[g] [out, in]
// (core's grouped_matmul): -> [R, out]. A weight whose group has no rows gets a zero gradient;
// callers that want such a weight left without one (an MoE expert no token chose) leave it out.
Variable grouped_linear(const Variable& x, const std::vector<Variable>& w,
                        const std::vector<int64_t>& rows);
// The MoE experts' first half, swiglu(gate, up) * scale with gate and up the grouped_linear of
// x's rows `index` (x [N, in], index [R], values in [0, N), not checked) through the weights
// gate[g] and up[g] [out, in] of each row group, and scale [R, 1] (the routing weights, in x's
// dtype): -> [R, out]. The caller gathers the rows, x_rows = index_select(x, 0, index). One node:
// the graph keeps x and the index, not the [R, in] rows (an MoE layer's R is tokens x top-k), and
// the two projections and the scale, not the swiglu, which the scale's gradient recomputes. A
// group's gate and up run as one [2 * out, in] weight, each way one grouped GEMM for both
// projections (without copying the weights when up[g] directly follows gate[g] in one storage,
// as OlmoeExperts lays them out); the backward gathers the rows once for both weight gradients
// and index_adds one input gradient onto x's rows (a row gathered twice gets both sums).
Variable grouped_swiglu_gathered(const Variable& x, const Tensor& index, const Tensor& x_rows,
                                 const std::vector<Variable>& gate, const std::vector<Variable>& up,
                                 const std::vector<int64_t>& rows, const Variable& scale);

// The experts' two steps for row groups that group_by_index_on_device left on the device: core's
// gathered_grouped_matmul and gathered_grouped_matmul_tn read groups.start where it is, so the
// host does not wait for the group sizes (on a GPU in bf16; elsewhere those ops read them on the
// host), and pick the rows groups.row in their loads, so no gathered copy is made either way.
// grouped_swiglu_gathered is the form above over x's rows groups.row (no x_rows).
// grouped_linear_index_add is grouped_linear of x [R, in] (the groups' rows in order) with its
// output rows summed onto rows groups.row of a [N, out] result, N the grouped index's rows, as
// index_add_to_zeros does (the experts' down projection and their combine). The weights are read as
// one stack, a view when they lie at equal distances in one storage (OlmoeExperts' do), else a copy
// each pass. Each weight gets its gradient from one GEMM of all the groups; the backward reads the
// sizes on the host (long there by then) only to leave a weight whose group had no rows without
// a gradient, as the forms above.
Variable grouped_linear_index_add(const Variable& x, const std::vector<Variable>& w,
                                  const DeviceIndexGroups& groups);
Variable grouped_swiglu_gathered(const Variable& x, const DeviceIndexGroups& groups,
                                 const std::vector<Variable>& gate, const std::vector<Variable>& up,
                                 const Variable& scale);

}  // namespace moegrad
