#include "core/cuda/runtime.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/staging_ring.h"

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

// Uploads go through a pinned buffer reused as a ring: from pageable memory the driver may wait
// for the stream to drain before it copies (the runtime API's synchronization rules), which would
// make every routing or address table uploaded mid-step a host wait. From pinned memory the copy
// is queued and the host goes on; it waits only to reuse bytes a copy still in flight reads.
constexpr size_t kStagingBytes = size_t(64) << 20;
constexpr size_t kStagingAlignment = 256;

struct Staging {
  std::mutex mu;
  bool tried = false;
  char* buffer = nullptr;  // null when the host would not pin it: uploads go unstaged
  StagingRing ring{kStagingBytes, kStagingAlignment};
  int64_t next_ticket = 0;
  std::deque<std::pair<int64_t, cudaEvent_t>> in_flight;  // the ring's live tickets, oldest first
  std::vector<cudaEvent_t> spare;
};

Staging& staging(int index) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<Staging>> all;
  std::lock_guard<std::mutex> lock(mu);
  if (all.empty()) all.resize(size_t(std::max(device_count(), 1)));
  MOEGRAD_CHECK(index >= 0 && index < int(all.size()), "cuda:", index, " is not a device");
  if (!all[size_t(index)]) all[size_t(index)] = std::make_unique<Staging>();
  return *all[size_t(index)];
}

// Waits for upload `ticket` (and so every older one) and recycles their events.
void retire_through(Staging& st, int64_t ticket) {
  while (!st.in_flight.empty() && st.in_flight.front().first <= ticket) {
    auto [t, event] = st.in_flight.front();
    st.in_flight.pop_front();
    if (t == ticket) {
      const cudaError_t ready = cudaEventQuery(event);
      if (ready == cudaErrorNotReady) {
        cudaGetLastError();  // "not ready" is an answer, not an error to report later
        ++waits;
        MOEGRAD_CUDA_CHECK(cudaEventSynchronize(event));
      } else {
        MOEGRAD_CUDA_CHECK(ready);
      }
    }
    st.spare.push_back(event);
  }
}

// Queues the upload through the staging ring; false when it cannot be staged.
bool upload_staged(void* dst, int index, const void* src, size_t nbytes) {
  if (nbytes > kStagingBytes) return false;
  Staging& st = staging(index);
  std::lock_guard<std::mutex> lock(st.mu);
  if (!st.tried) {
    st.tried = true;
    if (cudaHostAlloc(reinterpret_cast<void**>(&st.buffer), kStagingBytes, cudaHostAllocDefault) !=
        cudaSuccess) {
      cudaGetLastError();
      st.buffer = nullptr;
    }
  }
  if (!st.buffer) return false;
  const int64_t ticket = st.next_ticket++;
  const StagingRing::Placement at = st.ring.place(nbytes, ticket);
  if (at.wait_for >= 0) retire_through(st, at.wait_for);
  std::memcpy(st.buffer + at.offset, src, nbytes);
  cudaStream_t s = stream(index);
  MOEGRAD_CUDA_CHECK(
      cudaMemcpyAsync(dst, st.buffer + at.offset, nbytes, cudaMemcpyHostToDevice, s));
  cudaEvent_t event = nullptr;
  if (st.spare.empty()) {
    MOEGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  } else {
    event = st.spare.back();
    st.spare.pop_back();
  }
  MOEGRAD_CUDA_CHECK(cudaEventRecord(event, s));
  st.in_flight.emplace_back(ticket, event);
  return true;
}

}  // namespace

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
  // A copy to a device is ordered on the stream before any kernel that reads it: only a copy to
  // the host has to wait, for its data.
  if (kind == cudaMemcpyHostToDevice && upload_staged(dst, index, src, nbytes)) return;
  cudaStream_t s = stream(index);
  MOEGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, s));
  if (!dst_device.is_cuda()) {
    ++waits;
    MOEGRAD_CUDA_CHECK(cudaStreamSynchronize(s));
  }
}

}  // namespace moegrad::cuda
