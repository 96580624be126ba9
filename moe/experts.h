// The experts of one MoE layer, run dropless: assignments sorted by expert into contiguous rows
// per expert, each projection of all experts one grouped GEMM over them, outputs combined back
// per token with index_add.
//
// Each expert is its own child module "e" with HF's parameter names (e.gate_proj.weight, ...),
// so freezing an expert leaves it without gradient or optimizer state. Their weights are views
// into two allocations: gate_up [E, 2, I, H] (an expert's gate_proj and up_proj back to back, as
// in HF's fused gate_up_proj, so the experts run both as one grouped GEMM) and down_proj
// [E, H, I]; the per-projection stacks view them whole.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/init.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace moegrad {

// One expert (HF OlmoeMLP): down(silu(gate(x)) * up(x)), run by OlmoeExperts with the others.
class OlmoeExpert : public Module {
 public:
  OlmoeExpert(Tensor gate, Tensor up, Tensor down);

  Linear& gate_proj() const { return *gate_proj_; }
  Linear& up_proj() const { return *up_proj_; }
  Linear& down_proj() const { return *down_proj_; }
  // `proj` one of gate_proj, up_proj, down_proj; throws naming it otherwise.
  Linear& proj(const std::string& proj) const;

 private:
  std::shared_ptr<Linear> gate_proj_, up_proj_, down_proj_;
};

// How the experts' grouped GEMMs learn each expert's rows. Grouped: the host reads the counts
// after the dispatch's sort and plans cuBLAS's grouped GEMM (on a GPU a wait per MoE layer).
// Gathered: moegrad's own kernels read the starts on the device and gather the tokens' rows in
// their loads (bf16 on a GPU; f32 and the CPU run the grouped GEMM with the counts read on the
// host, the same function). Both give the same results up to the kernels' summation order.
enum class ExpertGemm { Grouped, Gathered };
// "grouped" or "gathered"; throws naming the accepted values otherwise.
ExpertGemm expert_gemm_from_string(const std::string& name);

class OlmoeExperts : public Module {
 public:
  OlmoeExperts(int64_t num_experts, int64_t hidden, int64_t intermediate,
               const InitOptions& init = {});
  // x: [N, H]; weights: [N, k]; indices: int [N, k] -> sum_j weights[n, j] * expert_{idx}(x_n).
  Variable forward(const Variable& x, const Variable& weights, const Tensor& indices) const;

  int64_t num_experts() const { return int64_t(experts_.size()); }
  OlmoeExpert& expert(int64_t e) const;
  // The data of expert e's `proj` weight (a view into the stack: copying into it loads that
  // expert).
  Tensor expert_weight(int64_t expert, const std::string& proj) const;

  // The stacks the expert weights view: gate and up [E, I, H] (not contiguous: they interleave),
  // down [E, H, I]. Rebuilt from the parameters on each call, so they follow Module::to (which
  // moves the shared storage once); throws if an expert's weight no longer views its slot.
  Tensor gate_stack() const { return stack("gate_proj"); }
  Tensor up_stack() const { return stack("up_proj"); }
  Tensor down_stack() const { return stack("down_proj"); }

  // Gathered is taken when every expert's weights train alike (all or none); otherwise, a
  // selective adaptation's layers, the grouped path leaves the frozen experts' rows out of the
  // graph and computes only the trained experts' weight gradients.
  void set_gemm(ExpertGemm gemm) { gemm_ = gemm; }
  ExpertGemm gemm() const { return gemm_; }

 private:
  Tensor stack(const std::string& proj) const;
  bool trains(int64_t expert) const;
  Variable forward_grouped(const Variable& x, const Variable& weights, const Tensor& indices) const;
  Variable forward_gathered(const Variable& x, const Variable& weights,
                            const Tensor& indices) const;

  std::vector<std::shared_ptr<OlmoeExpert>> experts_;
  ExpertGemm gemm_ = ExpertGemm::Grouped;
};

}  // namespace moegrad
