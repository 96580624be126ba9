#include "core/host_read.h"

#include <mutex>

#include "core/error.h"
#ifdef MOEGRAD_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace moegrad {

struct HostRead::State {
  std::once_flag read;
  std::vector<int64_t> values;
#ifdef MOEGRAD_WITH_CUDA
  std::unique_ptr<cuda::Download> download;
#endif
};

HostRead::HostRead(const Tensor& t) : state_(std::make_shared<State>()) {
  check_defined("HostRead", t, "source");
  MOEGRAD_CHECK(t.dtype() == DType::I64, "HostRead: expected an int64 tensor, got ",
                dtype_name(t.dtype()));
#ifdef MOEGRAD_WITH_CUDA
  if (t.device().is_cuda()) {
    // The copy reads the source in stream order, so a contiguous temporary freed now is safe:
    // the caching allocator reuses its block only for work queued after the copy.
    const Tensor src = t.contiguous();
    state_->values.resize(size_t(t.numel()));
    state_->download = std::make_unique<cuda::Download>(src.data_ptr(), src.device(),
                                                        state_->values.size() * sizeof(int64_t));
    return;
  }
#endif
  state_->values = t.to_vector<int64_t>();
}

const std::vector<int64_t>& HostRead::values() const {
  MOEGRAD_CHECK(state_, "HostRead: values() of a HostRead that reads nothing");
  std::call_once(state_->read, [this] {
#ifdef MOEGRAD_WITH_CUDA
    if (state_->download) {
      state_->download->wait_into(state_->values.data());
      state_->download.reset();
    }
#endif
  });
  return state_->values;
}

}  // namespace moegrad
