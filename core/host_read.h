// A small int64 tensor's values read on the host later than they are asked for. On a GPU the copy
// is queued when the HostRead is made, into page-locked memory, and `values` waits only until the
// device's stream has reached it, not for the work queued after it: an MoE layer asks for its
// expert counts in the forward and reads them in the backward, when they have long landed. On the
// CPU the values are read at once.
#pragma once
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace moegrad {

class HostRead {
 public:
  HostRead() = default;
  explicit HostRead(const Tensor& t);  // int64, any shape; read in its element order

  bool defined() const { return state_ != nullptr; }
  // The values (waiting for the copy on the first call). Copies of a HostRead share them.
  const std::vector<int64_t>& values() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace moegrad
