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

// Never destroyed: a thread still uploading while the process exits finds its ring intact.
Staging& staging(int index) {
  static auto* mu = new std::mutex;
  static auto* all = new std::vector<std::unique_ptr<Staging>>();
  std::lock_guard<std::mutex> lock(*mu);
  if (all->empty()) all->resize(size_t(std::max(device_count(), 1)));
  MOEGRAD_CHECK(index >= 0 && index < int(all->size()), "cuda:", index, " is not a device");
  std::unique_ptr<Staging>& st = (*all)[size_t(index)];
  if (!st) st = std::make_unique<Staging>();
  return *st;
}

// Whether `event`'s work has finished, without waiting.
bool event_done(cudaEvent_t event) {
  const cudaError_t ready = cudaEventQuery(event);
  if (ready == cudaErrorNotReady) {
    cudaGetLastError();  // "not ready" is an answer, not an error to report later
    return false;
  }
  MOEGRAD_CUDA_CHECK(ready);
  return true;
}

// Waits for upload `ticket` and every older one, and recycles their events. Uploads finish in
// ticket order, so waiting for the newest event at or before `ticket` is enough; a ticket may
// have none (recycled once done, or its upload failed before it was queued).
void retire_through(Staging& st, int64_t ticket) {
  size_t count = 0;
  while (count < st.in_flight.size() && st.in_flight[count].first <= ticket) ++count;
  if (count == 0) return;
  cudaEvent_t newest = st.in_flight[count - 1].second;
  if (!event_done(newest)) {
    ++waits;
    MOEGRAD_CUDA_CHECK(cudaEventSynchronize(newest));
  }
  for (; count > 0; --count) {
    st.spare.push_back(st.in_flight.front().second);
    st.in_flight.pop_front();
  }
}

// An event for the next upload: a spare one, the oldest upload's once it is done (so a lap of
// small uploads does not create one event each), or a new one.
cudaEvent_t take_event(Staging& st) {
  if (st.spare.empty() && !st.in_flight.empty() && event_done(st.in_flight.front().second)) {
    st.spare.push_back(st.in_flight.front().second);
    st.in_flight.pop_front();
  }
  cudaEvent_t event = nullptr;
  if (st.spare.empty()) {
    MOEGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  } else {
    event = st.spare.back();
    st.spare.pop_back();
  }
  return event;
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
  cudaEvent_t event = take_event(st);
  const int64_t ticket = st.next_ticket++;
  const StagingRing::Placement at = st.ring.place(nbytes, ticket);
  if (at.wait_for >= 0) retire_through(st, at.wait_for);
  std::memcpy(st.buffer + at.offset, src, nbytes);
  cudaStream_t s = stream(index);
  const cudaError_t queued =
      cudaMemcpyAsync(dst, st.buffer + at.offset, nbytes, cudaMemcpyHostToDevice, s);
  if (queued != cudaSuccess) st.spare.push_back(event);  // nothing reads the region
  MOEGRAD_CUDA_CHECK(queued);
  const cudaError_t recorded = cudaEventRecord(event, s);
  if (recorded != cudaSuccess) {
    // The copy is queued with no event to wait for: it finishes before the bytes are reused.
    st.spare.push_back(event);
    ++waits;
    cudaStreamSynchronize(s);
    MOEGRAD_CUDA_CHECK(recorded);
  }
  st.in_flight.emplace_back(ticket, event);
  return true;
}

// Page-locked blocks for downloads, each with the event that says when its last copy landed.
// Kept for reuse, never freed: cudaFreeHost would wait for the whole device.
struct DownloadBlocks {
  std::mutex mu;
  std::vector<Download::Block*> free;
};

DownloadBlocks& download_blocks() {
  static auto* blocks = new DownloadBlocks;
  return *blocks;
}

}  // namespace

struct Download::Block {
  char* host = nullptr;
  size_t capacity = 0;
  cudaEvent_t event = nullptr;  // of `device`: recorded on another GPU's stream it would fail
  int device = 0;
};

Download::Download(const void* src, Device src_device, size_t nbytes) : nbytes_(nbytes) {
  MOEGRAD_CHECK(src_device.is_cuda(), "Download: the source must be on a GPU, got ",
                src_device.str());
  DownloadBlocks& blocks = download_blocks();
  {
    // A block of this GPU whose last copy has landed and that is large enough; else a new one.
    std::lock_guard<std::mutex> lock(blocks.mu);
    for (auto it = blocks.free.begin(); it != blocks.free.end(); ++it)
      if ((*it)->device == src_device.index && (*it)->capacity >= nbytes &&
          event_done((*it)->event)) {
        block_ = *it;
        blocks.free.erase(it);
        break;
      }
  }
  if (!block_) {
    auto block = std::make_unique<Block>();
    block->capacity = std::max<size_t>(nbytes, 4096);
    block->device = src_device.index;
    set_device(src_device.index);
    MOEGRAD_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&block->host), block->capacity,
                                     cudaHostAllocDefault));
    const cudaError_t made = cudaEventCreateWithFlags(&block->event, cudaEventDisableTiming);
    if (made != cudaSuccess) cudaFreeHost(block->host);
    MOEGRAD_CUDA_CHECK(made);
    block_ = block.release();
  }
  if (nbytes == 0) return;
  set_device(src_device.index);
  cudaStream_t s = stream(src_device.index);
  cudaError_t queued = cudaMemcpyAsync(block_->host, src, nbytes, cudaMemcpyDeviceToHost, s);
  if (queued == cudaSuccess) queued = cudaEventRecord(block_->event, s);
  if (queued != cudaSuccess) {
    // The block may still be written by a copy without an event: let it land first.
    ++waits;
    cudaStreamSynchronize(s);
    std::lock_guard<std::mutex> lock(blocks.mu);
    blocks.free.push_back(block_);
    block_ = nullptr;
  }
  MOEGRAD_CUDA_CHECK(queued);
}

Download::~Download() {
  if (!block_) return;
  DownloadBlocks& blocks = download_blocks();
  std::lock_guard<std::mutex> lock(blocks.mu);
  blocks.free.push_back(block_);
}

void Download::wait_into(void* dst) {
  if (nbytes_ == 0) return;
  if (!event_done(block_->event)) {
    ++waits;
    MOEGRAD_CUDA_CHECK(cudaEventSynchronize(block_->event));
  }
  std::memcpy(dst, block_->host, nbytes_);
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
  // Between two GPUs the copy runs on the destination's stream, which is not ordered after the
  // source's kernels, nor its end before the source's block is freed and reused: wait both ways.
  const bool across_devices =
      dst_device.is_cuda() && src_device.is_cuda() && src_device.index != dst_device.index;
  if (across_devices) synchronize(src_device.index);
  set_device(index);
  // A copy to a device is ordered on the stream before any kernel that reads it: only a copy to
  // the host (for its data) or between GPUs (above) has to wait.
  if (kind == cudaMemcpyHostToDevice && upload_staged(dst, index, src, nbytes)) return;
  cudaStream_t s = stream(index);
  MOEGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, s));
  if (!dst_device.is_cuda() || across_devices) {
    ++waits;
    MOEGRAD_CUDA_CHECK(cudaStreamSynchronize(s));
  }
}

}  // namespace moegrad::cuda
