#include "nn/module.h"

#include <map>

#include "core/error.h"
#include "core/profiler.h"
#include "core/storage.h"
#include "core/tensor.h"

namespace moegrad {

static void check_name(const char* what, const std::string& name) {
  MOEGRAD_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module::", what, ": name '",
                name, "' must be non-empty and contain no '.'");
}

Variable Module::register_parameter(const std::string& name, Tensor init) {
  check_name("register_parameter", name);
  for (const auto& [n, p] : params_)
    MOEGRAD_CHECK(n != name, "Module::register_parameter: '", name, "' is already registered");
  if (init.storage()) init.storage()->set_category(MemoryCategory::Weights);
  Variable v(std::move(init), true);
  params_.emplace_back(name, v);
  return v;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name("register_module", name);
  MOEGRAD_CHECK(module != nullptr, "Module::register_module: '", name, "' is null");
  for (const auto& [n, c] : children_)
    MOEGRAD_CHECK(n != name, "Module::register_module: '", name, "' is already registered");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix,
                     std::vector<std::pair<std::string, Variable>>& out) const {
  for (const auto& [n, p] : params_) out.emplace_back(prefix + n, p);
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Variable>> out;
  collect("", out);
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

bool Module::has_parameter(const std::string& name) const {
  for (const auto& [n, p] : named_parameters())
    if (n == name) return true;
  return false;
}

Variable Module::parameter(const std::string& name) const {
  for (const auto& [n, p] : named_parameters())
    if (n == name) return p;
  throw Error("Module::parameter: no parameter named '" + name + "'");
}

void Module::set_requires_grad(const std::string& name, bool value) const {
  Variable p = parameter(name);
  p.set_requires_grad(value);
}

void Module::set_requires_grad(bool value) const {
  for (auto& [n, p] : named_parameters()) p.set_requires_grad(value);
}

void Module::zero_grad() const {
  // Without named_parameters(): its names cost more than the clearing (thousands a step).
  for (const auto& [n, p] : params_) p.impl()->grad = Tensor();
  for (const auto& [n, c] : children_) c->zero_grad();
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

// Every element of `t`'s storage, viewed flat in t's dtype.
static Tensor whole_storage(const Tensor& t) {
  const size_t item = dtype_size(t.dtype()), nbytes = t.storage()->nbytes();
  MOEGRAD_CHECK(nbytes % item == 0, "Module::to: a ", dtype_name(t.dtype()), " parameter views a ",
                nbytes, "-byte storage, which is not a whole number of its elements");
  return Tensor(t.storage(), {int64_t(nbytes / item)}, {1}, 0, t.dtype());
}

Device Module::device() const {
  const auto params = named_parameters();
  MOEGRAD_CHECK(!params.empty(), "Module::device: the module has no parameters");
  return params.front().second.data().device();
}

void Module::convert_storages(const std::function<bool(const Tensor&)>& keep,
                              const std::function<Tensor(const Tensor&)>& convert) const {
  // Parameters viewing one storage (the experts' slices of a stack) must still share one after
  // the conversion: each storage is converted once, whole, and every view is rebuilt over the
  // result (same shape, strides and offset in elements). Keyed by the old storages themselves:
  // holding them to the end, no freed address can be taken for one still to convert.
  std::map<std::shared_ptr<Storage>, Tensor> converted;
  MemoryCategoryScope weights(MemoryCategory::Weights);
  for (auto& [n, p] : named_parameters()) {
    Variable v = p;
    v.zero_grad();
    const Tensor old = v.data();
    if (keep(old)) continue;
    Tensor& dst = converted[old.storage()];
    if (!dst.defined()) dst = convert(whole_storage(old));
    v.data() = Tensor(dst.storage(), old.shape(), old.strides(), old.offset(), dst.dtype());
  }
}

void Module::to(Device device) const {
  convert_storages([&](const Tensor& t) { return t.device() == device; },
                   [&](const Tensor& whole) { return whole.to(device); });
}

void Module::to(DType dtype) const {
  MOEGRAD_CHECK(is_floating(dtype), "Module::to: parameters must be floating point, got ",
                dtype_name(dtype));
  convert_storages([&](const Tensor& t) { return t.dtype() == dtype; },
                   [&](const Tensor& whole) { return whole.to(dtype); });
}

void Module::name_for_profiler(const std::string& path) const {
  profiler::name_module(this, path);
  for (const auto& [name, child] : children_)
    child->name_for_profiler(path.empty() ? name : path + "." + name);
}

}  // namespace moegrad
