#include "core/cuda/runtime.h"

#include <cuda_runtime.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace moegrad::cuda {

void check(int status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  auto err = static_cast<cudaError_t>(status);
  throw Error(detail::concat("CUDA error in ", call, " at ", file, ":", line, ": ",
                             cudaGetErrorName(err), " (", cudaGetErrorString(err), ")"));
}

int device_count() {
  static int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver" error
      return 0;
    }
    return n;
  }();
  return count;
}

void set_device(int index) {
  MOEGRAD_CHECK(index >= 0 && index < device_count(), "cuda:", index, " requested, but ",
                device_count(), " CUDA device(s) are present");
  MOEGRAD_CUDA_CHECK(cudaSetDevice(index));
}

cudaStream_t stream(int index) {
  static std::mutex mu;
  static std::vector<cudaStream_t> streams;
  std::lock_guard<std::mutex> lock(mu);
  if (streams.empty()) streams.assign(std::max(device_count(), 1), nullptr);
  MOEGRAD_CHECK(index >= 0 && index < int(streams.size()), "cuda:", index, " is not a device");
  if (!streams[index]) {
    set_device(index);
    MOEGRAD_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[index], cudaStreamNonBlocking));
  }
  return streams[index];
}

namespace {
std::atomic<int64_t> waits{0};
}

int64_t host_waits() { return waits.load(); }

void synchronize(int index) {
  ++waits;
  MOEGRAD_CUDA_CHECK(cudaStreamSynchronize(stream(index)));
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  int index = dst_device.is_cuda() ? dst_device.index : src_device.index;
  cudaMemcpyKind kind = dst_device.is_cuda()
                            ? (src_device.is_cuda() ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                            : (src_device.is_cuda() ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  set_device(index);
  cudaStream_t s = stream(index);
  MOEGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, s));
  // moegrad's host memory is pageable, which cudaMemcpyAsync stages before it returns, and a
  // copy to a device is ordered on the stream before any kernel that reads it: only a copy to
  // the host has to wait, for its data. So uploading routing tables or GEMM address tables
  // mid-step does not drain the GPU's queue.
  if (!dst_device.is_cuda()) {
    ++waits;
    MOEGRAD_CUDA_CHECK(cudaStreamSynchronize(s));
  }
}

}  // namespace moegrad::cuda
