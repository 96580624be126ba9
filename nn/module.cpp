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
  for (auto& [n, p] : named_parameters()) p.zero_grad();
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

void Module::to(Device device) const {
  // Parameters viewing one storage (the experts' slices of a stack) must still share one after
  // the move: each storage is copied once, whole, and every view is rebuilt over the copy.
  // Keyed by the old storages themselves: holding them to the end, no freed address can be
  // taken for one still to move.
  std::map<std::shared_ptr<Storage>, std::shared_ptr<Storage>> moved;
  MemoryCategoryScope weights(MemoryCategory::Weights);
  for (auto& [n, p] : named_parameters()) {
    Variable v = p;
    v.zero_grad();
    const Tensor old = v.data();
    if (old.device() == device) continue;
    std::shared_ptr<Storage>& dst = moved[old.storage()];
    if (!dst) dst = whole_storage(old).to(device).storage();
    v.data() = Tensor(dst, old.shape(), old.strides(), old.offset(), old.dtype());
  }
}

void Module::name_for_profiler(const std::string& path) const {
  profiler::name_module(this, path);
  for (const auto& [name, child] : children_)
    child->name_for_profiler(path.empty() ? name : path + "." + name);
}

}  // namespace moegrad
