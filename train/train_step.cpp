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
namespace {

// sequence_losses where the logits are, [B].
Tensor sequence_loss_tensor(const Tensor& logits, const Tensor& input_ids) {
  // A cross-entropy per sequence: it keeps f32 arithmetic for bf16 logits, where a bf16
  // logsumexp would be rounded to a 16th.
  const int64_t t = input_ids.size(1);
  std::vector<Tensor> losses;
  for (int64_t i = 0; i < input_ids.size(0); ++i)
    losses.push_back(cross_entropy(logits.select(0, i).narrow(0, 0, t - 1),
                                   input_ids.select(0, i).narrow(0, 1, t - 1).contiguous())
                         .reshape({1}));
  return concat(losses);
}

// The values a step reports, gathered where they are made and read in one copy when the step
// needs them (the gradient norm, before the update): on a GPU each read of its own would be a
// host wait in the middle of the step, between one micro-batch's forward and backward or before
// the next micro-batch.
class StepValues {
 public:
  // Appends t's elements (any float dtype, any shape); returns where they start in read().
  size_t add(const Tensor& t) {
    const size_t at = size_;
    parts_.push_back(t.reshape({t.numel()}).to(DType::F64));
    size_ += size_t(t.numel());
    return at;
  }
  std::vector<double> read() const {
    std::vector<Tensor> parts;
    for (const Tensor& p : parts_) parts.push_back(p.to(parts_.front().device()));
    return concat(parts).to_vector<double>();
  }

 private:
  std::vector<Tensor> parts_;
  size_t size_ = 0;
};

}  // namespace

std::vector<double> sequence_losses(const Tensor& logits, const Tensor& input_ids) {
  return sequence_loss_tensor(logits, input_ids).to_vector<double>();
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
  // Where each micro-batch's values lie in `values` (npos: not computed).
  constexpr size_t npos = size_t(-1);
  struct Read {
    size_t loss, ce, lb = npos, z = npos, rows = npos;
  };
  StepValues values;
  std::vector<Read> reads;
  for (const data::Batch& batch : micro_batches) {
    LossOutput r = [&] {
      const profiler::PhaseScope phase(profiler::Phase::Forward);
      return model.loss(batch.input_ids, options.loss_weights);
    }();
    Read read;
    if (options.language_losses) {
      NoGradGuard no_grad;
      read.rows = values.add(sequence_loss_tensor(r.output.hidden.data(), batch.input_ids));
    }
    // Nothing here holds the logits (the largest activation) during the backward, so the
    // cross-entropy's gradient can take their buffer.
    r.output.hidden = Variable();
    // A loss that reaches no trained parameter (only some experts train, and no token of this
    // micro-batch chose them) has nothing to propagate.
    if (r.loss.requires_grad()) {
      const profiler::PhaseScope phase(profiler::Phase::Backward);
      mul_scalar(r.loss, scale).backward();
    }
    read.loss = values.add(r.loss.data());
    read.ce = values.add(r.ce.data());
    if (r.lb.defined()) read.lb = values.add(r.lb.data());
    if (r.z.defined()) read.z = values.add(r.z.data());
    reads.push_back(read);
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
  const size_t norm_at = values.add(grad_norm_squared(optimizer));
  const std::vector<double> v = values.read();
  for (size_t m = 0; m < reads.size(); ++m) {
    const Read& read = reads[m];
    s.loss += v[read.loss] * scale;
    s.ce += v[read.ce] * scale;
    if (read.lb != npos) s.lb += v[read.lb] * scale;
    if (read.z != npos) s.z += v[read.z] * scale;
    if (read.rows == npos) continue;
    const data::Batch& batch = micro_batches[m];
    for (size_t i = 0; i < size_t(batch.input_ids.size(0)); ++i) {
      LanguageLoss& l = s.languages[batch.languages.at(i)];
      l.ce_sum += v[read.rows + i];
      ++l.sequences;
    }
  }
  s.grad_norm = std::sqrt(v[norm_at]);
  if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm))
    throw NonFiniteLoss("the loss is " + std::to_string(s.loss) + " and the gradient norm " +
                        std::to_string(s.grad_norm) + "; no parameter was updated");
  // Clipped as the optimizer reads the gradients, not by a pass over them first.
  optimizer.step(options.lr, clip_coefficient(s.grad_norm, options.clip));
  return s;
}

}  // namespace moegrad::train
