#include "train/adamw.h"

#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/ops/adamw.h"
#include "core/storage.h"
#include "train/glob.h"

namespace moegrad::train {

AdamW::AdamW(NamedParameters params, const FreezeMask& mask, AdamWOptions options,
             std::vector<ParamGroup> groups)
    : options_(options), params_(std::move(params)), mask_(mask) {
  MOEGRAD_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                "AdamW: betas must lie in [0, 1), got ", options.beta1, " and ", options.beta2);
  MOEGRAD_CHECK(options.eps >= 0 && options.weight_decay >= 0,
                "AdamW: eps and weight_decay must be >= 0, got ", options.eps, " and ",
                options.weight_decay);
  mask.check_matches(params_);
  std::vector<std::string> names;
  for (const auto& [name, p] : params_) names.push_back(name);
  std::vector<const ParamGroup*> group_of(names.size(), nullptr);
  for (const ParamGroup& g : groups) {
    MOEGRAD_CHECK(g.lr_scale >= 0 && g.weight_decay >= 0, "AdamW group '", g.name,
                  "': lr_scale and weight_decay must be >= 0, got ", g.lr_scale, " and ",
                  g.weight_decay);
    for (size_t i : match_names(g.pattern, names, "AdamW group '" + g.name + "'"))
      if (!group_of[i]) group_of[i] = &g;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    const ParamMask& m = mask.at(name);
    if (!m.trains()) continue;
    Slot s;
    s.name = name;
    s.param = p;
    s.lr_scale = group_of[i] ? group_of[i]->lr_scale : 1.0;
    s.weight_decay = group_of[i] ? group_of[i]->weight_decay : options.weight_decay;
    Shape shape = p.shape();
    if (m.mode == ParamMask::Mode::Rows) {
      s.runs = row_runs(m.rows);
      shape[0] = int64_t(m.rows.size());
    }
    MemoryCategoryScope state(MemoryCategory::OptimizerState);
    s.exp_avg = zeros(shape, p.dtype(), p.device());
    s.exp_avg_sq = zeros(shape, p.dtype(), p.device());
    slots_.push_back(std::move(s));
  }
}

void AdamW::step(double lr) {
  MOEGRAD_CHECK(std::isfinite(lr) && lr >= 0, "AdamW.step: lr must be finite and >= 0, got ", lr);
  // Every update of the step in one call: on a GPU one launch for all contiguous pieces.
  std::vector<AdamWTensors> updates;
  for (Slot& s : slots_) {
    const Tensor& grad = s.param.grad();
    if (!grad.defined()) continue;
    const Tensor& data = s.param.data();
    MOEGRAD_CHECK(grad.shape() == data.shape(), "AdamW.step: gradient of ", s.name, " has shape ",
                  shape_str(grad.shape()), ", the parameter ", shape_str(data.shape()));
    ++s.steps;
    const double group_lr = lr * s.lr_scale;
    if (s.runs.empty()) {
      updates.push_back({data, grad, s.exp_avg, s.exp_avg_sq, group_lr, s.weight_decay, s.steps});
      continue;
    }
    int64_t at = 0;  // the run's first row in the state
    for (const auto& [first, count] : s.runs) {
      updates.push_back({data.narrow(0, first, count), grad.narrow(0, first, count),
                         s.exp_avg.narrow(0, at, count), s.exp_avg_sq.narrow(0, at, count),
                         group_lr, s.weight_decay, s.steps});
      at += count;
    }
  }
  adamw_step_multi(updates, options_.beta1, options_.beta2, options_.eps);
  ++step_count_;
}

std::vector<Variable> AdamW::parameters() const {
  std::vector<Variable> out;
  for (const Slot& s : slots_) out.push_back(s.param);
  return out;
}

void AdamW::zero_grad() const {
  for (const auto& [name, p] : params_) {
    Variable v = p;
    v.zero_grad();
  }
}

void AdamW::set_step_count(int64_t steps) {
  MOEGRAD_CHECK(steps >= 0, "AdamW.set_step_count: expected >= 0, got ", steps);
  step_count_ = steps;
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Slot& s : slots_) {
    out.emplace_back("exp_avg/" + s.name, s.exp_avg);
    out.emplace_back("exp_avg_sq/" + s.name, s.exp_avg_sq);
    out.emplace_back("step/" + s.name, from_vector(std::vector<int64_t>{s.steps}, {1}));
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
  const char* op = "AdamW.load_state";
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state) {
    MOEGRAD_CHECK(given.emplace(name, &t).second, op, ": tensor ", name, " given twice");
  }
  // Validate everything before changing anything.
  std::set<std::string> expected_names;
  std::vector<int64_t> steps;
  for (const Slot& s : slots_) {
    for (const auto& [name, expected] : {std::pair{"exp_avg/" + s.name, s.exp_avg.shape()},
                                         std::pair{"exp_avg_sq/" + s.name, s.exp_avg_sq.shape()},
                                         std::pair{"step/" + s.name, Shape{1}}}) {
      expected_names.insert(name);
      const auto it = given.find(name);
      MOEGRAD_CHECK(it != given.end(), op, ": missing tensor ", name);
      const Tensor& t = *it->second;
      MOEGRAD_CHECK(t.defined() && t.shape() == expected, op, ": tensor ", name, " has shape ",
                    t.defined() ? shape_str(t.shape()) : "(undefined)", ", expected ",
                    shape_str(expected));
    }
    const double v = given.at("step/" + s.name)->item();
    MOEGRAD_CHECK(v >= 0 && v == std::floor(v) && v < 9e15, op, ": tensor step/", s.name, " holds ",
                  v, ", expected a step count");
    steps.push_back(int64_t(v));
  }
  for (const auto& [name, t] : given) {
    MOEGRAD_CHECK(expected_names.count(name), op, ": unexpected tensor ", name,
                  " (state of a parameter this mask freezes, or of another model?)");
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.exp_avg.copy_(*given.at("exp_avg/" + s.name));
    s.exp_avg_sq.copy_(*given.at("exp_avg_sq/" + s.name));
    s.steps = steps[i];
  }
}

int64_t AdamW::state_bytes() const {
  int64_t bytes = 0;
  for (const Slot& s : slots_)
    bytes += (s.exp_avg.numel() + s.exp_avg_sq.numel()) * int64_t(dtype_size(s.exp_avg.dtype()));
  return bytes;
}

}  // namespace moegrad::train
