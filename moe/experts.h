// The experts of one MoE layer, stored stacked (gate_proj, up_proj [E, I, H], down_proj
// [E, H, I]) and run dropless: assignments sorted by expert, one GEMM pair per expert over its
// contiguous rows, outputs combined back per token with index_add.
#pragma once
#include <string>

#include "nn/init.h"
#include "nn/module.h"

namespace moegrad {

class OlmoeExperts : public Module {
 public:
  OlmoeExperts(int64_t num_experts, int64_t hidden, int64_t intermediate,
               const InitOptions& init = {});
  // x: [N, H]; weights: [N, k]; indices: int [N, k] -> sum_j weights[n, j] * expert_{idx}(x_n).
  Variable forward(const Variable& x, const Variable& weights, const Tensor& indices) const;

  // The HF per-expert weight, `proj` one of gate_proj, up_proj, down_proj: a view into the
  // stacked parameter (copying into it loads that expert).
  Tensor expert_weight(int64_t expert, const std::string& proj) const;

  int64_t num_experts() const { return num_experts_; }
  const Variable& gate_proj() const { return gate_proj_; }
  const Variable& up_proj() const { return up_proj_; }
  const Variable& down_proj() const { return down_proj_; }

 private:
  int64_t num_experts_;
  Variable gate_proj_, up_proj_, down_proj_;
};

}  // namespace moegrad
