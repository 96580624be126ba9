// The backward engine: a topological sort of the graph below the root, then one pass in
// reverse order that sums each node's incoming gradients before running its rule.
#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/saved_tensors.h"
#include "autograd/variable.h"
#include "core/ops/binary.h"
#include "core/storage.h"

namespace moegrad {
namespace {

Tensor run_hooks(const std::vector<GradHook>& hooks, Tensor grad) {
  for (const GradHook& h : hooks) {
    Tensor replaced = h(grad);
    if (replaced.defined()) grad = std::move(replaced);
  }
  return grad;
}

// Out of place: a rule may return the same tensor for several inputs (add passes its
// gradient to both sides), so summing into one of them in place would corrupt the other.
void accumulate(Tensor& slot, const Tensor& grad) {
  slot = slot.defined() ? add(slot, grad) : grad;
}

// A leaf's .grad is its own buffer, summed into in place across backward calls (gradient
// accumulation over micro-batches). The first gradient becomes that buffer when nothing else
// can see it (a fresh result, the common case); otherwise (the same tensor returned for
// several inputs, a view of a larger gradient, one a hook or the caller keeps) a copy does.
// `grad` comes by value, moved from the engine's list, so that its reference is the only one
// the engine holds.
// `owned_piece`: g is one of several disjoint dense pieces of a buffer that only those pieces
// hold (owned_pieces), which can become the leaves' gradients as they are.
void accumulate_leaf(VariableImpl& leaf, Tensor grad, bool owned_piece = false) {
  Tensor g = run_hooks(leaf.hooks, std::move(grad));
  if (leaf.grad.defined()) {
    add_(leaf.grad, g);
  } else if (owned_piece || sole_owner(g)) {
    g.storage()->set_category(MemoryCategory::Gradients);
    leaf.grad = std::move(g);
  } else {
    MemoryCategoryScope gradients(MemoryCategory::Gradients);
    Tensor c = g.contiguous();
    leaf.grad = c.shares_storage(g) ? g.clone() : c;
  }
}

// Which of a rule's gradients for its leaves are pieces of one buffer that nothing but those
// pieces holds, contiguous and not overlapping: the experts' weight gradients, which one GEMM of
// all experts writes as a stack. Each can be its leaf's gradient without a copy of its own, as a
// sole owner's buffer is. A leaf with hooks (which may keep what they see) is left out.
// Empty when there are none (most rules), else one entry per edge.
std::vector<bool> owned_pieces(const std::vector<Node::Edge>& edges,
                               const std::vector<Tensor>& grads) {
  auto candidate = [&](size_t i) {
    return edges[i].leaf && edges[i].leaf->hooks.empty() && grads[i].defined() &&
           grads[i].is_contiguous();
  };
  size_t count = 0;
  for (size_t i = 0; i < edges.size() && count < 2; ++i) count += candidate(i);
  if (count < 2) return {};
  std::vector<bool> owned(edges.size(), false);
  std::vector<size_t> candidates;
  for (size_t i = 0; i < edges.size(); ++i)
    if (candidate(i)) candidates.push_back(i);
  std::unordered_map<const Storage*, std::vector<size_t>> by_storage;
  for (size_t i : candidates) by_storage[grads[i].storage().get()].push_back(i);
  for (auto& [storage, pieces] : by_storage) {
    if (pieces.size() < 2 || grads[pieces[0]].storage().use_count() != long(pieces.size()))
      continue;
    std::sort(pieces.begin(), pieces.end(),
              [&](size_t a, size_t b) { return grads[a].offset() < grads[b].offset(); });
    bool apart = true;
    for (size_t j = 1; j < pieces.size() && apart; ++j)
      apart =
          grads[pieces[j - 1]].offset() + grads[pieces[j - 1]].numel() <= grads[pieces[j]].offset();
    for (size_t i : pieces) owned[i] = apart;
  }
  return owned;
}

}  // namespace

void Variable::backward(const Tensor& grad, bool retain_graph) const {
  MOEGRAD_CHECK(defined() && requires_grad(),
                "backward: variable does not require grad (no input of its graph does)");
  Tensor root_grad = grad;
  if (!root_grad.defined()) {
    MOEGRAD_CHECK(numel() == 1, "backward: a gradient is needed for a non-scalar variable of shape ",
                  shape_str(shape()));
    root_grad = ones(shape(), dtype(), device());
  }
  MOEGRAD_CHECK(root_grad.shape() == shape(), "backward: gradient shape ",
                shape_str(root_grad.shape()), " differs from variable shape ", shape_str(shape()));
  // Backward rules are plain tensor code; recording them would only waste memory.
  NoGradGuard no_grad;
  if (is_leaf()) {
    accumulate_leaf(*impl_, std::move(root_grad));
    return;
  }

  // Count, for each node, how many edges of the graph feed gradient into it. The counts and
  // the sums live on the nodes, marked with this call's number; on the way out (an exception
  // too) the sums are let go.
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = ++calls;
  Node* root = impl_->grad_fn.get();
  std::vector<Node*> nodes{root};
  root->backward_call_ = call;
  root->pending_ = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const Node::Edge& e : nodes[i]->edges()) {
      Node* next = e.node.get();
      if (next == nullptr) continue;
      if (next->backward_call_ != call) {
        next->backward_call_ = call;
        next->pending_ = 0;
        nodes.push_back(next);
      }
      ++next->pending_;
    }
  }
  struct LetGo {
    const std::vector<Node*>& nodes;
    ~LetGo() {
      for (Node* n : nodes) n->grad_ = Tensor();
    }
  } let_go{nodes};

  root->grad_ = root_grad;
  std::vector<Node*> ready{root};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensor g = run_hooks(n->hooks(), std::move(n->grad_));
    n->grad_ = Tensor();
    std::vector<Tensor> input_grads;
    {
      const SavedTensors::ExpireScope expire(!retain_graph);
      input_grads = n->apply(g);
    }
    g = Tensor();  // a rule that passes it on (add) leaves it to its inputs alone
    if (!retain_graph) n->release();
    const auto& edges = n->edges();
    const std::vector<bool> owned = owned_pieces(edges, input_grads);
    for (size_t i = 0; i < edges.size(); ++i) {
      const Node::Edge& e = edges[i];
      if (e.leaf) {
        if (input_grads[i].defined())
          accumulate_leaf(*e.leaf, std::move(input_grads[i]), i < owned.size() && owned[i]);
      } else if (e.node) {
        accumulate(e.node->grad_, input_grads[i]);
        if (--e.node->pending_ == 0) ready.push_back(e.node.get());
      }
    }
  }
}

}  // namespace moegrad
