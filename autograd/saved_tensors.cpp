#include "autograd/saved_tensors.h"

#include "core/storage.h"

namespace moegrad {
namespace {
thread_local bool expire = false;
}

bool SavedTensors::expire_after_rule() { return expire; }

SavedTensors::ExpireScope::ExpireScope(bool value) : prev_(expire) { expire = value; }
SavedTensors::ExpireScope::~ExpireScope() { expire = prev_; }

bool sole_owner(const Tensor& t) {
  return t.storage().use_count() == 1 && t.is_contiguous() && t.offset() == 0 &&
         size_t(t.numel()) * dtype_size(t.dtype()) == t.storage()->nbytes();
}

}  // namespace moegrad
