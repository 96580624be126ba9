#include "autograd/variable.h"

#include "autograd/grad_mode.h"
#include "core/profiler.h"

namespace moegrad {

Variable::Variable(Tensor data, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  check_defined("Variable", data, "data");
  impl_->data = std::move(data);
  set_requires_grad(requires_grad);
}

Variable& Variable::set_requires_grad(bool value) {
  MOEGRAD_CHECK(is_leaf(), "set_requires_grad: only leaf variables can be switched; use detach()");
  MOEGRAD_CHECK(!value || is_floating(impl_->data.dtype()),
                "set_requires_grad: only float tensors can require grad, got ",
                dtype_name(impl_->data.dtype()));
  impl_->requires_grad = value;
  return *this;
}

void Variable::register_hook(GradHook hook) const {
  MOEGRAD_CHECK(requires_grad(), "register_hook: variable does not require grad");
  if (impl_->grad_fn) {
    impl_->grad_fn->hooks().push_back(std::move(hook));
  } else {
    impl_->hooks.push_back(std::move(hook));
  }
}

Node::Node(std::string name, const std::vector<Variable>& inputs, BackwardFn fn)
    : name_(std::move(name)), fn_(std::move(fn)), profiled_module_(profiler::current_module()) {
  edges_.reserve(inputs.size());
  for (const Variable& v : inputs) {
    Edge e;
    if (v.defined() && v.requires_grad()) {
      if (v.grad_fn()) {
        e.node = v.grad_fn();
      } else {
        e.leaf = v.impl();
      }
      e.shape = v.shape();
    }
    needs_grad_.push_back(e.active());
    edges_.push_back(std::move(e));
  }
}

std::vector<Tensor> Node::apply(const Tensor& grad) {
  MOEGRAD_CHECK(fn_ != nullptr, "backward through ", name_,
                " a second time: its saved tensors were freed; pass retain_graph=true to the "
                "first backward");
  // Profiled as "<op>.backward" under the module whose forward recorded the node.
  const profiler::ModuleIdScope module(profiled_module_);
  const profiler::Scope scope(profiler::Kind::Backward,
                              profiler::enabled() ? name_ + ".backward" : std::string(),
                              grad.device());
  std::vector<Tensor> grads = fn_(grad, needs_grad_);
  MOEGRAD_CHECK(grads.size() == edges_.size(), name_, " backward returned ", grads.size(),
                " gradients for ", edges_.size(), " inputs");
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!edges_[i].active() || (edges_[i].leaf && !grads[i].defined())) continue;
    MOEGRAD_CHECK(grads[i].defined(), name_, " backward left the gradient of input ", i,
                  " undefined");
    MOEGRAD_CHECK(grads[i].shape() == edges_[i].shape, name_, " backward: gradient of input ", i,
                  " has shape ", shape_str(grads[i].shape()), ", expected ",
                  shape_str(edges_[i].shape));
  }
  return grads;
}

Variable make_result(Tensor out, const char* name, const std::vector<Variable>& inputs,
                     BackwardFn backward) {
  Variable result(std::move(out));
  if (!GradMode::enabled()) return result;
  bool any = false;
  for (const Variable& v : inputs) any |= v.defined() && v.requires_grad();
  if (!any) return result;
  result.impl()->requires_grad = true;
  result.impl()->grad_fn = std::make_shared<Node>(name, inputs, std::move(backward));
  return result;
}

}  // namespace moegrad
