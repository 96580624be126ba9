// Variable: a Tensor that takes part in reverse-mode differentiation. Every differentiable op
// (autograd/ops/) returns a Variable whose grad_fn node captures only what its backward needs.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace moegrad {

class Node;
class Variable;

// Receives the gradient flowing into a variable; returns a replacement, or an undefined
// Tensor to keep it.
using GradHook = std::function<Tensor(const Tensor&)>;

struct VariableImpl {
  Tensor data;
  Tensor grad;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::vector<GradHook> hooks;    // leaf hooks; a non-leaf's hooks live on its grad_fn
};

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& data() const { return impl_->data; }
  Tensor& data() { return impl_->data; }
  const Shape& shape() const { return impl_->data.shape(); }
  int64_t dim() const { return impl_->data.dim(); }
  int64_t size(int64_t d) const { return impl_->data.size(d); }
  int64_t numel() const { return impl_->data.numel(); }
  DType dtype() const { return impl_->data.dtype(); }
  Device device() const { return impl_->data.device(); }

  bool requires_grad() const { return impl_->requires_grad; }
  // Only leaves can be switched; a parameter frozen this way gets no gradient.
  Variable& set_requires_grad(bool value);
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  const Tensor& grad() const { return impl_->grad; }
  void zero_grad() { impl_->grad = Tensor(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }

  // Back-propagates from this variable. `grad` defaults to 1 for a one-element variable.
  // Without retain_graph the graph's saved tensors are freed and a second call throws. One call
  // at a time over a graph's nodes (they hold its bookkeeping): a hook or rule must not
  // back-propagate through the graph it is called from.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  // The same data, cut from the graph.
  Variable detach() const { return Variable(impl_->data, false); }
  void register_hook(GradHook hook) const;

  const std::shared_ptr<VariableImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<VariableImpl> impl_;
};

// The gradients of an op's output with respect to each of its inputs. `needs_grad[i]` says
// whether input i wants one; entries it does not want may be left undefined. So may a wanted
// leaf's, when the op leaves it out of the result after all (an MoE expert that no token
// reached, known only once the forward has run on the device): that leaf then gets nothing
// from this op, as if it had not been an input. A non-leaf input's must be defined.
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad, const std::vector<bool>& needs_grad)>;

class Node {
 public:
  struct Edge {
    std::shared_ptr<Node> node;          // the input's grad_fn, for a non-leaf input
    std::shared_ptr<VariableImpl> leaf;  // the input itself, for a leaf that requires grad
    Shape shape;                         // the input's shape, to check the rule's output
    bool active() const { return node || leaf; }
  };

  Node(std::string name, const std::vector<Variable>& inputs, BackwardFn fn);
  const std::string& name() const { return name_; }
  const std::vector<Edge>& edges() const { return edges_; }
  std::vector<GradHook>& hooks() { return hooks_; }
  // Runs the rule; throws when the graph was already freed.
  std::vector<Tensor> apply(const Tensor& grad);
  void release() { fn_ = nullptr; }

 private:
  std::string name_;
  std::vector<Edge> edges_;
  std::vector<bool> needs_grad_;
  BackwardFn fn_;
  std::vector<GradHook> hooks_;
  int profiled_module_;  // the module whose forward made it, for the profiler (-1: none)

  // The engine's bookkeeping (Variable::backward), valid while backward_call_ is the number of
  // the call under way: edges not yet run that feed this node, and their summed gradient.
  friend class Variable;
  uint64_t backward_call_ = 0;
  int pending_ = 0;
  Tensor grad_;
};

// Wraps an op's result: records `backward` when grad mode is on and any input requires grad.
Variable make_result(Tensor out, const char* name, const std::vector<Variable>& inputs,
                     BackwardFn backward);

}  // namespace moegrad
