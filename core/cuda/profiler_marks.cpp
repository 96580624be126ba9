#include "core/cuda/profiler_marks.h"

#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include <mutex>
#include <vector>

#include "core/cuda/runtime.h"

namespace moegrad::cuda {
namespace {

std::mutex mu;
std::vector<cudaEvent_t> pool;  // every event made so far
size_t in_use = 0;              // pool[0, in_use) hold marks of the current profile

}  // namespace

void* profiler_mark(int device) {
  std::lock_guard<std::mutex> lock(mu);
  if (in_use == pool.size()) {
    cudaEvent_t e;
    MOEGRAD_CUDA_CHECK(cudaEventCreate(&e));
    pool.push_back(e);
  }
  cudaEvent_t e = pool[in_use++];
  MOEGRAD_CUDA_CHECK(cudaEventRecord(e, stream(device)));
  return e;
}

double profiler_elapsed_ms(void* from, void* to) {
  auto a = static_cast<cudaEvent_t>(from), b = static_cast<cudaEvent_t>(to);
  MOEGRAD_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  MOEGRAD_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  return double(ms);
}

void profiler_release_marks() {
  std::lock_guard<std::mutex> lock(mu);
  in_use = 0;
}

void nvtx_push(const char* name) { nvtxRangePushA(name); }
void nvtx_pop() { nvtxRangePop(); }

}  // namespace moegrad::cuda
