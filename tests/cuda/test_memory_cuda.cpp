// Memory accounting on a GPU: the caching allocator's counts, the categories, and the limit
// that makes a device look smaller.
#include "core/storage.h"
#include "core/tensor.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(MemoryCuda, StatsReportTheCachingAllocator) {
  SKIP_WITHOUT_GPU();
  const Device gpu = Device::cuda();
  reset_peak_memory(gpu);
  const MemoryStats before = memory_stats(gpu);
  const int64_t bytes = int64_t(sizeof(float)) << 20;
  {
    Tensor t = empty({1 << 20}, DType::F32, gpu);
    EXPECT_GE(memory_stats(gpu).current_bytes, before.current_bytes + bytes);
  }
  const MemoryStats after = memory_stats(gpu);
  EXPECT_EQ(after.current_bytes, before.current_bytes);
  EXPECT_GE(after.peak_bytes, before.current_bytes + bytes);
}

TEST(MemoryCuda, CategoriesAndTheLimitWorkOnTheDevice) {
  SKIP_WITHOUT_GPU();
  const Device gpu = Device::cuda();
  const MemoryReport base = memory_report(gpu);
  const size_t grads = size_t(MemoryCategory::Gradients);
  {
    MemoryCategoryScope scope(MemoryCategory::Gradients);
    Tensor g = empty({1 << 20}, DType::F32, gpu);
    EXPECT_EQ(memory_report(gpu).current[grads], base.current[grads] + (4 << 20));
    set_memory_limit(gpu, memory_report(gpu).total() + (1 << 20));
    const std::string message = testing::error_of([&] { empty({1 << 20}, DType::F32, gpu); });
    set_memory_limit(gpu, 0);
    EXPECT_NE(message.find("out of memory on cuda:0: tried to allocate 4.00 MiB for gradients"),
              std::string::npos)
        << message;
  }
  EXPECT_EQ(memory_report(gpu).current[grads], base.current[grads]);
  EXPECT_EQ(memory_report(Device::cpu()).limit, 0);  // each device has its own
}

}  // namespace
}  // namespace moegrad
