#include "core/storage.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

#include "core/error.h"

#ifdef MOEGRAD_WITH_CUDA
#include "core/cuda/caching_allocator.h"
#endif

namespace moegrad {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;

class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    // 64 bytes: one cache line, and the widest AVX-512 load. Large blocks are aligned to and
    // backed by 2 MiB pages: with 4 KiB pages, touching a fresh 64 MiB output costs 16k page
    // faults, more than the op that writes it.
    size_t align = nbytes >= kHugePage ? kHugePage : 64;
    size_t rounded = (nbytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, rounded);
    MOEGRAD_CHECK(p != nullptr, "out of host memory: failed to allocate ", nbytes, " bytes");
    if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);  // a hint: failure is harmless
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
};

}  // namespace

Allocator& allocator_for(Device device) {
  static HostAllocator host;
  if (device.is_cpu()) return host;
#ifdef MOEGRAD_WITH_CUDA
  return cuda::caching_allocator(device.index);
#else
  throw Error("device " + device.str() + " requested, but moegrad was built without CUDA");
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
