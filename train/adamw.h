// AdamW over what a freeze mask trains, with optimizer state only for that: a whole parameter
// gets exp_avg and exp_avg_sq of its shape, a row-masked one [rows, ...] for its trained rows
// only, a frozen one nothing. Updates run core adamw_step (torch.optim.AdamW's arithmetic) in
// place on the parameter's data; a row-masked parameter is updated run by run of consecutive
// trained rows, so its other rows are never written.
//
// Mixed precision: a bf16 parameter's trained part also gets an f32 master copy (made from its
// values), and f32 moments. The update runs on the master with the bf16 gradient widened, and
// the master, rounded to bf16, is written back into the parameter in the same pass.
//
// As torch.optim does for a parameter whose .grad is None, a trainable parameter whose grad is
// undefined at step() is skipped: no decay, no moment update, and its own step count (which
// drives its bias correction) does not advance.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/ops/adamw.h"
#include "core/tensor.h"
#include "train/freeze_mask.h"

namespace moegrad::train {

// The paper's settings are the defaults: (0.9, 0.95), eps 1e-8, weight decay 0.1 on every
// parameter, norms and embeddings included.
struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// Trainable parameters whose names match `pattern` (train/glob.h) take this group's lr scale and
// weight decay; the first matching group wins, the rest use lr_scale 1 and the options' decay.
struct ParamGroup {
  std::string name;  // e.g. "no_decay", for messages
  std::string pattern;
  double lr_scale = 1.0;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  // Allocates zeroed state for what `mask` trains. The mask must match `params` (names); a
  // group pattern that matches no parameter at all is an error (a trainable one is not needed:
  // masks vary).
  AdamW(NamedParameters params, const FreezeMask& mask, AdamWOptions options = {},
        std::vector<ParamGroup> groups = {});

  // One update with learning rate `lr` (times the group's scale), every gradient read times
  // grad_scale (gradient clipping's coefficient, see grad_clip.h), then step_count() + 1.
  void step(double lr, double grad_scale = 1.0);
  // Drops every parameter's gradient (the next backward starts from zero).
  void zero_grad() const;

  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t steps);

  // "exp_avg/NAME" and "exp_avg_sq/NAME" (the parameter's dtype and device; [rows, ...] for a
  // row mask), "master/NAME" for a bf16 parameter, and "step/NAME" (i64, shape [1]: that
  // parameter's own update count), per trainable parameter in parameter order. The tensors are
  // the state itself, not copies.
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  // Copies `state` into the optimizer's (converting dtype and device). Strict: a missing or
  // unexpected name, or a shape mismatch, is an error naming the tensor, and nothing is changed.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state);
  // Bytes held by the state (exp_avg, exp_avg_sq and the f32 masters).
  int64_t state_bytes() const;

  const AdamWOptions& options() const { return options_; }
  // Every parameter given, frozen ones included, and the mask they train under.
  const NamedParameters& named_parameters() const { return params_; }
  const FreezeMask& mask() const { return mask_; }
  // The trainable parameters, in parameter order (e.g. for a data-parallel gradient reduction).
  std::vector<Variable> parameters() const;
  // Their defined gradients in parameter order, a row-masked parameter's as its runs of trained
  // rows (views): what a step reads.
  std::vector<Tensor> trained_grads() const;

 private:
  struct Slot {
    std::string name;
    Variable param;
    std::vector<std::pair<int64_t, int64_t>> runs;  // (first row, count); empty: whole
    double lr_scale = 1.0;
    double weight_decay = 0.0;
    Tensor exp_avg, exp_avg_sq;
    Tensor master;  // f32 values of a bf16 parameter's trained part; undefined for f32 params
    int64_t steps = 0;
    size_t first_update = 0;  // its first piece in updates_
    Tensor cut_from;          // the data its pieces were cut from
  };

  // Cuts s's pieces of its parameter's data and state into updates_.
  void cut_updates(Slot& s);

  AdamWOptions options_;
  std::vector<Slot> slots_;  // trainable parameters only
  // Every trained piece's update (one per whole parameter, or per run of trained rows), its
  // tensors cut once: a step only sets each piece's gradient, lr and step count, where cutting
  // them afresh cost microseconds a parameter (medium.cfg has 3,219). The gradients are cleared
  // after each step, so that they are not held beyond it.
  std::vector<AdamWTensors> updates_;
  NamedParameters params_;
  FreezeMask mask_;
  int64_t step_count_ = 0;
};

}  // namespace moegrad::train
