#include <vector>

#include "core/storage.h"
#include "core/tensor.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(MemoryStats, HostCountsLiveBytesAndTheirPeak) {
  const Device cpu = Device::cpu();
  reset_peak_memory(cpu);
  const MemoryStats before = memory_stats(cpu);
  EXPECT_EQ(before.peak_bytes, before.current_bytes);
  const int64_t bytes = int64_t(sizeof(float)) << 20;
  {
    Tensor t = empty({1 << 20});
    const MemoryStats during = memory_stats(cpu);
    EXPECT_GE(during.current_bytes, before.current_bytes + bytes);
    EXPECT_GE(during.peak_bytes, before.peak_bytes + bytes);
    Tensor view = t.narrow(0, 0, 10);  // a view allocates nothing
    EXPECT_EQ(memory_stats(cpu).current_bytes, during.current_bytes);
  }
  const MemoryStats after = memory_stats(cpu);
  EXPECT_EQ(after.current_bytes, before.current_bytes);
  EXPECT_GE(after.peak_bytes, before.current_bytes + bytes);  // the peak remembers
  reset_peak_memory(cpu);
  EXPECT_EQ(memory_stats(cpu).peak_bytes, after.current_bytes);
}

TEST(MemoryStats, WrappedMemoryIsNotCounted) {
  std::vector<float> buffer(1 << 16);
  const int64_t current = memory_stats(Device::cpu()).current_bytes;
  bool released = false;
  {
    auto s = std::make_shared<Storage>(buffer.data(), buffer.size() * sizeof(float), Device::cpu(),
                                       [&] { released = true; });
    Tensor t(s, {int64_t(buffer.size())}, {1}, 0, DType::F32);
    EXPECT_EQ(memory_stats(Device::cpu()).current_bytes, current);
  }
  EXPECT_TRUE(released);
  EXPECT_EQ(memory_stats(Device::cpu()).current_bytes, current);
}

TEST(MemoryStats, CudaReportsTheCachingAllocator) {
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

}  // namespace
}  // namespace moegrad
