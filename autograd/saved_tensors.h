// What a backward rule may do with the tensors its node saved. Without retain_graph the
// engine frees a node's saved tensors right after its rule runs, so a rule may then write its
// gradient over a saved buffer that nothing else can see (cross-entropy's gradient over its
// [N, V] logits, the largest activation of a language model) instead of allocating another.
#pragma once

#include "core/tensor.h"

namespace moegrad {

class SavedTensors {
 public:
  // True while the engine runs a rule whose node it frees right after; false elsewhere.
  static bool expire_after_rule();
  // The engine's switch, restored when the scope ends.
  class ExpireScope {
   public:
    explicit ExpireScope(bool expire);
    ~ExpireScope();
    ExpireScope(const ExpireScope&) = delete;
    ExpireScope& operator=(const ExpireScope&) = delete;

   private:
    bool prev_;
  };
};

// True when `t` is the only tensor that views its storage, and views all of it, densely:
// nothing else can see a write into it, and it holds no memory beyond its elements. Every
// tensor (and view) holds a reference to its storage, so the count covers whatever a rule,
// a hook, a node's saved tensors, the engine or the caller still has.
bool sole_owner(const Tensor& t);

}  // namespace moegrad
