#include "train/train_step.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/ops/binary.h"
#include "core/ops/cross_entropy.h"
#include "core/ops/join.h"
#include "core/ops/multi_tensor.h"
#include "core/profiler.h"
#include "core/storage.h"
#include "train/grad_clip.h"

namespace moegrad::train {

std::vector<double> sequence_losses(const Tensor& logits, const Tensor& input_ids) {
  // A cross-entropy per sequence: it keeps f32 arithmetic for bf16 logits, where a bf16
  // logsumexp would be rounded to a 16th. One copy to the host at the end.
  const int64_t t = input_ids.size(1);
  std::vector<Tensor> losses;
  for (int64_t i = 0; i < input_ids.size(0); ++i)
    losses.push_back(cross_entropy(logits.select(0, i).narrow(0, 0, t - 1),
                                   input_ids.select(0, i).narrow(0, 1, t - 1).contiguous())
                         .reshape({1}));
  return concat(losses).to_vector<double>();
}

StepOptions step_options(const TrainConfig& config) {
  const TrainSection& t = config.train;
  StepOptions o;
  o.lr = t.lr;
  o.clip = t.clip;
  (t.lb_kind == "hf" ? o.loss_weights.hf_load_balancing
                     : o.loss_weights.megablocks_load_balancing) = t.lb_coef;
  o.loss_weights.z_loss = t.z_coef;
  return o;
}

StepStats train_step(const OlmoeForCausalLM& model, AdamW& optimizer,
                     const std::vector<data::Batch>& micro_batches, const StepOptions& options) {
  MOEGRAD_CHECK(!micro_batches.empty(), "train_step: no micro-batch");
  StepStats s;
  model.zero_grad();
  const double scale = 1.0 / double(micro_batches.size());
  // Over several micro-batches a bf16 parameter's gradients are summed in f32 (summed in bf16
  // they would be rounded after each): each micro-batch's gradients are widened into the sums
  // by one multi-tensor pass and cleared, and the optimizer takes the sums (its f32 master
  // update widens a bf16 gradient anyway). The sums are views of one zeroed buffer: 4 bytes
  // per trained bf16 parameter, only when grad_accum > 1, and two launches a micro-batch
  // rather than two per parameter (thousands in a model with many experts).
  std::vector<Variable> bf16_params;
  if (micro_batches.size() > 1)
    for (const auto& [name, p] : optimizer.named_parameters())
      if (p.requires_grad() && p.dtype() == DType::BF16) bf16_params.push_back(p);
  std::vector<Tensor> f32_sums;
  std::vector<bool> summed(bf16_params.size(), false);
  if (!bf16_params.empty()) {
    int64_t total = 0;
    for (const Variable& p : bf16_params) total += p.numel();
    const MemoryCategoryScope gradients(MemoryCategory::Gradients);
    const Tensor flat = zeros({total}, DType::F32, bf16_params[0].device());
    int64_t offset = 0;
    for (const Variable& p : bf16_params) {
      f32_sums.push_back(flat.narrow(0, offset, p.numel()).view(p.shape()));
      offset += p.numel();
    }
  }
  for (const data::Batch& batch : micro_batches) {
    LossOutput r = [&] {
      const profiler::PhaseScope phase(profiler::Phase::Forward);
      return model.loss(batch.input_ids, options.loss_weights);
    }();
    if (options.language_losses) {
      NoGradGuard no_grad;
      const std::vector<double> per_row = sequence_losses(r.output.hidden.data(), batch.input_ids);
      for (size_t i = 0; i < per_row.size(); ++i) {
        LanguageLoss& l = s.languages[batch.languages[i]];
        l.ce_sum += per_row[i];
        ++l.sequences;
      }
    }
    // Nothing here holds the logits (the largest activation) during the backward, so the
    // cross-entropy's gradient can take their buffer.
    r.output.hidden = Variable();
    {
      const profiler::PhaseScope phase(profiler::Phase::Backward);
      mul_scalar(r.loss, scale).backward();
    }
    s.loss += r.loss.data().item() * scale;
    s.ce += r.ce.data().item() * scale;
    if (r.lb.defined()) s.lb += r.lb.data().item() * scale;
    if (r.z.defined()) s.z += r.z.data().item() * scale;
    s.tokens += batch.input_ids.numel();
    if (!bf16_params.empty()) {
      std::vector<Tensor> grads;
      for (size_t i = 0; i < bf16_params.size(); ++i) {
        grads.push_back(bf16_params[i].grad());
        if (grads.back().defined()) summed[i] = true;
      }
      accumulate_(f32_sums, grads);
      for (Variable& p : bf16_params) p.zero_grad();
    }
  }
  // A parameter no micro-batch reached (an expert no token chose) keeps no gradient.
  for (size_t i = 0; i < bf16_params.size(); ++i)
    if (summed[i]) bf16_params[i].impl()->grad = f32_sums[i];
  if (options.reduce_gradients) {
    const profiler::PhaseScope phase(profiler::Phase::Communication);
    std::vector<Variable> trainable;
    for (const auto& [name, p] : optimizer.named_parameters())
      if (p.requires_grad()) trainable.push_back(p);
    options.reduce_gradients(trainable);
  }
  const profiler::PhaseScope phase(profiler::Phase::Optimizer);
  s.grad_norm = grad_norm(optimizer.named_parameters(), optimizer.mask());
  if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm))
    throw NonFiniteLoss("the loss is " + std::to_string(s.loss) + " and the gradient norm " +
                        std::to_string(s.grad_norm) + "; no parameter was updated");
  // Clipped as the optimizer reads the gradients, not by a pass over them first.
  optimizer.step(options.lr, clip_coefficient(s.grad_norm, options.clip));
  return s;
}

}  // namespace moegrad::train
