#include "core/storage.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <new>

#include "core/error.h"

#ifdef MOEGRAD_WITH_CUDA
#include "core/cuda/caching_allocator.h"
#endif

namespace moegrad {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kLargeBlock = size_t(128) << 10;  // malloc's own mmap threshold
constexpr size_t kLargeGrain = size_t(64) << 10;

// 64 bytes: one cache line, and the widest AVX-512 load. Large blocks are aligned to and
// backed by 2 MiB pages: with 4 KiB pages, touching a fresh 64 MiB output costs 16k page
// faults, more than the op that writes it.
size_t host_alignment(size_t nbytes) { return nbytes >= kHugePage ? kHugePage : 64; }
size_t host_rounded(size_t nbytes) {
  const size_t grain = nbytes >= kHugePage ? kHugePage : nbytes >= kLargeBlock ? kLargeGrain : 64;
  return (nbytes + grain - 1) / grain * grain;
}

// Blocks of 128 KiB and more freed by one training step are asked for again by the next, at
// sizes that vary with the routing: they are kept (up to kMaxCachedBytes in all) and handed out
// again for any request they fit with at most a quarter to spare. Without this the kernel zeroes
// fresh pages for every such block, a quarter of a CPU training step. Smaller blocks are
// malloc's business.
constexpr size_t kMaxCachedBytes = size_t(4) << 30;

class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    const size_t align = host_alignment(nbytes);
    size_t size = host_rounded(nbytes);
    void* p = nullptr;
    if (size >= kLargeBlock) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = cached_.lower_bound(size);
      if (it != cached_.end() && it->first <= size + size / 4 &&
          (align == 64 || it->first >= kHugePage)) {
        p = it->second;
        size = it->first;
        cached_bytes_ -= size;
        cached_.erase(it);
      }
    }
    if (p == nullptr) {
      p = std::aligned_alloc(align, size);
      MOEGRAD_CHECK(p != nullptr, "out of host memory: failed to allocate ", nbytes, " bytes");
      if (align == kHugePage) madvise(p, size, MADV_HUGEPAGE);  // a hint: failure is harmless
    }
    if (size >= kLargeBlock) {
      std::lock_guard<std::mutex> lock(mutex_);
      large_sizes_[p] = size;
    }
    // Relaxed: the counters order no other memory access.
    const int64_t now =
        current_.fetch_add(int64_t(size), std::memory_order_relaxed) + int64_t(size);
    int64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    if (ptr == nullptr) return;
    size_t size = host_rounded(nbytes);
    if (size >= kLargeBlock) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = large_sizes_.find(ptr);
      size = it->second;  // a cached block may be larger than what was asked for
      large_sizes_.erase(it);
      current_.fetch_sub(int64_t(size), std::memory_order_relaxed);
      if (cached_bytes_ + size <= kMaxCachedBytes) {
        cached_.emplace(size, ptr);
        cached_bytes_ += size;
        return;
      }
    } else {
      current_.fetch_sub(int64_t(size), std::memory_order_relaxed);
    }
    std::free(ptr);
  }

  MemoryStats stats() const {
    return {current_.load(std::memory_order_relaxed), peak_.load(std::memory_order_relaxed)};
  }
  void reset_peak() {
    peak_.store(current_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> current_{0}, peak_{0};  // bytes handed out, cached blocks excluded
  std::mutex mutex_;
  std::multimap<size_t, void*> cached_;            // free large blocks by size
  std::unordered_map<void*, size_t> large_sizes_;  // large blocks handed out -> their size
  size_t cached_bytes_ = 0;
};

HostAllocator& host_allocator() {
  // Never destroyed: tensors in static storage may be freed after main returns.
  static auto* host = new HostAllocator();
  return *host;
}

}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return host_allocator();
#ifdef MOEGRAD_WITH_CUDA
  return cuda::caching_allocator(device.index);
#else
  throw Error("device " + device.str() + " requested, but moegrad was built without CUDA");
#endif
}

MemoryStats memory_stats(Device device) {
  if (device.is_cpu()) return host_allocator().stats();
#ifdef MOEGRAD_WITH_CUDA
  const cuda::MemoryStats s = cuda::memory_stats(device.index);
  return {int64_t(s.allocated), int64_t(s.peak_allocated)};
#else
  return {};
#endif
}

void reset_peak_memory(Device device) {
  if (device.is_cpu()) {
    host_allocator().reset_peak();
    return;
  }
#ifdef MOEGRAD_WITH_CUDA
  cuda::reset_peak_memory(device.index);
#endif
}

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(nbytes);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void()> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (allocator_) {
    allocator_->deallocate(data_, nbytes_);
  } else if (release_) {
    release_();
  }
}

}  // namespace moegrad
