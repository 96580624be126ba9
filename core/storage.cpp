#include "core/storage.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <iterator>
#include <new>
#include <string>
#include <vector>

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
// fresh pages for every such block, a quarter of a CPU training step.
constexpr size_t kMaxCachedBytes = size_t(4) << 30;
// Smaller blocks are kept too, in one last-in-first-out list per rounded size (64-byte steps), so
// the block an op frees is the next one of its size handed out. glibc's aligned allocation skips
// its per-thread cache: it cost a small op more than its own work (bench_host's op chains).
constexpr size_t kMaxSmallCachedBytes = size_t(64) << 20;
constexpr size_t kSmallSizes = kLargeBlock / 64;

class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    const size_t align = host_alignment(nbytes);
    size_t size = host_rounded(nbytes);
    void* p = nullptr;
    if (size < kLargeBlock) {
      std::lock_guard<std::mutex> lock(mutex_);
      void*& head = small_cached_[size / 64];
      if (head != nullptr) {
        p = head;
        head = *static_cast<void**>(p);
        small_cached_bytes_ -= size;
      }
    } else {
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
      if (p == nullptr)
        throw OutOfMemory("the system has no more memory to give (aligned_alloc failed)");
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
      std::lock_guard<std::mutex> lock(mutex_);
      if (small_cached_bytes_ + size <= kMaxSmallCachedBytes) {
        void*& head = small_cached_[size / 64];
        *static_cast<void**>(ptr) = head;
        head = ptr;
        small_cached_bytes_ += size;
        return;
      }
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
  // Free small blocks by size / 64, each list linked through the blocks' first bytes.
  std::array<void*, kSmallSizes> small_cached_{};
  size_t small_cached_bytes_ = 0;
};

HostAllocator& host_allocator() {
  // Never destroyed: tensors in static storage may be freed after main returns.
  static auto* host = new HostAllocator();
  return *host;
}

thread_local MemoryCategory current_category = MemoryCategory::Activations;

// The by-category accounts of one device, and its limit.
class CategoryAccounts {
 public:
  // Counts `n` more bytes of `c`, unless that passes the limit: then returns false.
  bool reserve(MemoryCategory c, int64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (r_.limit > 0 && r_.total() + n > r_.limit) return false;
    add(c, n);
    return true;
  }
  void release(MemoryCategory c, int64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    r_.current[size_t(c)] -= n;
  }
  void move(MemoryCategory from, MemoryCategory to, int64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    r_.current[size_t(from)] -= n;
    add(to, n);
  }
  MemoryReport report() {
    std::lock_guard<std::mutex> lock(mutex_);
    return r_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    r_.peak = r_.current;
    r_.at_peak = r_.current;
    r_.peak_total = r_.total();
  }
  void set_limit(int64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    r_.limit = bytes;
  }

 private:
  void add(MemoryCategory c, int64_t n) {
    int64_t& now = r_.current[size_t(c)];
    now += n;
    r_.peak[size_t(c)] = std::max(r_.peak[size_t(c)], now);
    const int64_t total = r_.total();
    if (total > r_.peak_total) {
      r_.peak_total = total;
      r_.at_peak = r_.current;
    }
  }

  std::mutex mutex_;
  MemoryReport r_;
};

CategoryAccounts& accounts(Device device) {
  // Never destroyed, like the allocators: storages may be freed after main returns.
  static std::mutex mutex;
  static auto* cpu = new CategoryAccounts();
  static auto* cuda = new std::vector<std::unique_ptr<CategoryAccounts>>();
  if (device.is_cpu()) return *cpu;
  std::lock_guard<std::mutex> lock(mutex);
  if (cuda->size() <= size_t(device.index)) cuda->resize(size_t(device.index) + 1);
  auto& a = (*cuda)[size_t(device.index)];
  if (!a) a = std::make_unique<CategoryAccounts>();
  return *a;
}

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  size_t u = 0;
  while (std::abs(v) >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

std::string out_of_memory(Device device, size_t nbytes, MemoryCategory category,
                          const std::string& why) {
  const MemoryReport r = accounts(device).report();
  return detail::concat("out of memory on ", device.str(), ": tried to allocate ",
                        format_bytes(int64_t(nbytes)), " for ", memory_category_name(category),
                        " with ", memory_breakdown(r.current), " in use; ", why);
}

}  // namespace

const char* memory_category_name(MemoryCategory category) {
  switch (category) {
    case MemoryCategory::Weights: return "weights";
    case MemoryCategory::Gradients: return "gradients";
    case MemoryCategory::OptimizerState: return "optimizer state";
    case MemoryCategory::Activations: return "activations";
    case MemoryCategory::Workspace: return "workspace";
  }
  return "?";
}

MemoryCategoryScope::MemoryCategoryScope(MemoryCategory category) : previous_(current_category) {
  current_category = category;
}
MemoryCategoryScope::~MemoryCategoryScope() { current_category = previous_; }

int64_t MemoryReport::total() const {
  int64_t sum = 0;
  for (int64_t b : current) sum += b;
  return sum;
}

MemoryReport memory_report(Device device) { return accounts(device).report(); }

std::string memory_breakdown(const std::array<int64_t, kMemoryCategories>& bytes) {
  int64_t total = 0;
  std::string parts;
  for (size_t c = 0; c < kMemoryCategories; ++c) {
    total += bytes[c];
    parts += (c ? ", " : "") + std::string(memory_category_name(MemoryCategory(c))) + " " +
             format_bytes(bytes[c]);
  }
  return format_bytes(total) + " (" + parts + ")";
}

void set_memory_limit(Device device, int64_t bytes) {
  MOEGRAD_CHECK(bytes >= 0, "set_memory_limit: bytes must be >= 0 (0: no limit), got ", bytes);
  accounts(device).set_limit(bytes);
}

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
  return {int64_t(s.allocated), int64_t(s.peak_allocated), int64_t(s.driver_allocations),
          int64_t(s.cache_releases)};
#else
  return {};
#endif
}

void reset_peak_memory(Device device) {
  accounts(device).reset_peak();
  if (device.is_cpu()) {
    host_allocator().reset_peak();
    return;
  }
#ifdef MOEGRAD_WITH_CUDA
  cuda::reset_peak_memory(device.index);
#endif
}

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), category_(current_category) {
  Allocator& allocator = allocator_for(device);
  CategoryAccounts& acc = accounts(device);
  if (!acc.reserve(category_, int64_t(nbytes)))
    throw OutOfMemory(out_of_memory(
        device, nbytes, category_,
        "the memory limit set for " + device.str() + " is " + format_bytes(acc.report().limit)));
  try {
    data_ = allocator.allocate(nbytes);
  } catch (const OutOfMemory& e) {
    acc.release(category_, int64_t(nbytes));
    throw OutOfMemory(out_of_memory(device, nbytes, category_, e.what()));
  }
  allocator_ = &allocator;
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void()> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

void Storage::set_category(MemoryCategory category) {
  if (category == category_) return;
  if (allocator_) accounts(device_).move(category_, category, int64_t(nbytes_));
  category_ = category;
}

Storage::~Storage() {
  if (allocator_) {
    accounts(device_).release(category_, int64_t(nbytes_));
    allocator_->deallocate(data_, nbytes_);
  } else if (release_) {
    release_();
  }
}

}  // namespace moegrad
