#include "train/adamw.h"

#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "core/ops/adamw.h"
#include "core/storage.h"
#include "train/glob.h"

namespace moegrad::train {
namespace {

// Calls fn(param_piece, state_piece) once per trained piece of a parameter: the whole tensor,
// or each run (first row, count) of trained rows. param_piece(t) cuts the piece from a tensor of
// the parameter's shape, state_piece(t) from a state tensor ([trained rows, ...]).
template <typename Fn>
void for_each_piece(const std::vector<std::pair<int64_t, int64_t>>& runs, Fn&& fn) {
  if (runs.empty()) {
    const auto whole = [](const Tensor& t) { return t; };
    fn(whole, whole);
    return;
  }
  int64_t at = 0;
  for (const auto& [first, count] : runs) {
    fn([first = first, count = count](const Tensor& t) { return t.narrow(0, first, count); },
       [at, count = count](const Tensor& t) { return t.narrow(0, at, count); });
    at += count;
  }
}

}  // namespace

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
    const bool mixed = p.dtype() == DType::BF16;
    const DType state_dtype = mixed ? DType::F32 : p.dtype();
    s.exp_avg = zeros(shape, state_dtype, p.device());
    s.exp_avg_sq = zeros(shape, state_dtype, p.device());
    if (mixed) {
      s.master = empty(shape, DType::F32, p.device());
      for_each_piece(s.runs, [&](auto param_piece, auto state_piece) {
        state_piece(s.master).copy_(param_piece(p.data()));
      });
    }
    s.first_update = updates_.size();
    updates_.resize(updates_.size() + (s.runs.empty() ? 1 : s.runs.size()));
    cut_updates(s);
    slots_.push_back(std::move(s));
  }
}

void AdamW::cut_updates(Slot& s) {
  const Tensor& data = s.param.data();
  s.cut_from = data;
  size_t k = s.first_update;
  for_each_piece(s.runs, [&](auto param_piece, auto state_piece) {
    AdamWTensors& u = updates_[k++];
    u.exp_avg = state_piece(s.exp_avg);
    u.exp_avg_sq = state_piece(s.exp_avg_sq);
    u.weight_decay = s.weight_decay;
    if (s.master.defined()) {  // a bf16 parameter trains through its f32 master
      u.param = state_piece(s.master);
      u.bf16_param = param_piece(data);
    } else {
      u.param = param_piece(data);
    }
  });
}

void AdamW::step(double lr, double grad_scale) {
  MOEGRAD_CHECK(std::isfinite(lr) && lr >= 0, "AdamW.step: lr must be finite and >= 0, got ", lr);
  // The gradients leave updates_ however the step ends: it must not hold them past it.
  struct ClearGrads {
    std::vector<AdamWTensors>& updates;
    ~ClearGrads() {
      for (AdamWTensors& u : updates) u.grad = Tensor();
    }
  } clear{updates_};
  for (Slot& s : slots_) {
    const Tensor& grad = s.param.grad();
    if (!grad.defined()) continue;  // its pieces' gradients stay undefined: skipped
    const Tensor& data = s.param.data();
    MOEGRAD_CHECK(grad.shape() == data.shape(), "AdamW.step: gradient of ", s.name, " has shape ",
                  shape_str(grad.shape()), ", the parameter ", shape_str(data.shape()));
    // The pieces view the parameter's data as it was cut; a parameter given new data since
    // (a move, a load that replaced the tensor) is cut again.
    if (s.cut_from.storage() != data.storage() || s.cut_from.offset() != data.offset() ||
        s.cut_from.shape() != data.shape() || s.cut_from.strides() != data.strides())
      cut_updates(s);
    ++s.steps;
    const double group_lr = lr * s.lr_scale;
    size_t k = s.first_update;
    for_each_piece(s.runs, [&](auto param_piece, auto) {
      AdamWTensors& u = updates_[k++];
      u.grad = param_piece(grad);
      u.lr = group_lr;
      u.step = s.steps;
    });
  }
  // Every update of the step in one call: on a GPU one launch for all contiguous pieces.
  adamw_step_multi(updates_, options_.beta1, options_.beta2, options_.eps, grad_scale);
  ++step_count_;
}

std::vector<Variable> AdamW::parameters() const {
  std::vector<Variable> out;
  for (const Slot& s : slots_) out.push_back(s.param);
  return out;
}

std::vector<Tensor> AdamW::trained_grads() const {
  std::vector<Tensor> out;
  for (const Slot& s : slots_) {
    const Tensor& grad = s.param.grad();
    if (grad.defined())
      for_each_piece(s.runs, [&](auto param_piece, auto) { out.push_back(param_piece(grad)); });
  }
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
    if (s.master.defined()) out.emplace_back("master/" + s.name, s.master);
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
    std::vector<std::pair<std::string, Shape>> names = {{"exp_avg/" + s.name, s.exp_avg.shape()},
                                                        {"exp_avg_sq/" + s.name, s.exp_avg_sq.shape()},
                                                        {"step/" + s.name, Shape{1}}};
    if (s.master.defined()) names.emplace_back("master/" + s.name, s.master.shape());
    for (const auto& [name, expected] : names) {
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
    if (s.master.defined()) {
      s.master.copy_(*given.at("master/" + s.name));
      // The model's bf16 copy is the master rounded: restore it with the master.
      for_each_piece(s.runs, [&](auto param_piece, auto state_piece) {
        param_piece(s.param.data()).copy_(state_piece(s.master));
      });
    }
    s.steps = steps[i];
  }
}

int64_t AdamW::state_bytes() const {
  int64_t bytes = 0;
  for (const Slot& s : slots_)
    for (const Tensor* t : {&s.exp_avg, &s.exp_avg_sq, &s.master})
      if (t->defined()) bytes += t->numel() * int64_t(dtype_size(t->dtype()));
  return bytes;
}

}  // namespace moegrad::train
