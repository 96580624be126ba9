// Module: a named tree of parameters. Names join with '.', so a model built from HF-named
// children yields exactly the checkpoint's names.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace moegrad {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Parameters are shared handles: a copied module would alias its original's weights.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // (dotted name, parameter), depth-first in registration order.
  std::vector<std::pair<std::string, Variable>> named_parameters() const;
  std::vector<Variable> parameters() const;
  // Throws naming the missing name.
  Variable parameter(const std::string& name) const;
  bool has_parameter(const std::string& name) const;
  // Freezes (false) or unfreezes one parameter; a frozen parameter gets no gradient.
  void set_requires_grad(const std::string& name, bool value) const;
  void set_requires_grad(bool value) const;  // every parameter
  void zero_grad() const;
  int64_t num_parameters() const;
  // Moves every parameter's data and drops its gradient; the Variables keep their identity.
  // Parameters that view one storage view one storage on `device` too (each storage is copied
  // once, whole; views keep their shape, strides and offset).
  void to(Device device) const;
  // Converts every parameter's data to `dtype` (a float type) the same way: bf16 for mixed
  // precision, whose f32 masters the optimizer keeps.
  void to(DType dtype) const;
  // The device of the parameters (to() keeps them together); throws when there are none.
  Device device() const;
  // Names this module `path` and each descendant by its dotted path under it for the profiler,
  // which attributes the work of a module's forward (and its backward) to that path.
  void name_for_profiler(const std::string& path) const;

 protected:
  Variable register_parameter(const std::string& name, Tensor init);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Variable>>& out) const;
  // Replaces the storage of every parameter whose data is not `keep`: convert(whole storage)
  // once per storage, every view rebuilt over the result.
  void convert_storages(const std::function<bool(const Tensor&)>& keep,
                        const std::function<Tensor(const Tensor&)>& convert) const;

  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Children addressed by position ("layers.0", "layers.1", ...).
template <typename M>
class ModuleList : public Module {
 public:
  void push_back(std::shared_ptr<M> module) {
    items_.push_back(register_module(std::to_string(items_.size()), std::move(module)));
  }
  int64_t size() const { return int64_t(items_.size()); }
  M& operator[](int64_t i) const { return *items_.at(size_t(i)); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace moegrad
