// Memory accounting on a GPU: the caching allocator's counts, the categories, and the limit
// that makes a device look smaller.
#include <algorithm>
#include <vector>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/runtime.h"
#include "core/device.h"
#include "core/host_read.h"
#include "core/ops/matmul.h"
#include "core/ops/multi_tensor.h"
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

// With the cache emptied a block comes from the driver; the same size again reuses the freed
// block. A copy to the host is a host wait; a copy to the device is not.
TEST(MemoryCuda, DriverAllocationsCacheReleasesAndHostWaitsAreCounted) {
  SKIP_WITHOUT_GPU();
  const Device gpu = Device::cuda();
  reset_peak_memory(gpu);
  cuda::empty_cache(gpu.index);
  EXPECT_EQ(memory_stats(gpu).cache_releases, 1);
  reset_peak_memory(gpu);
  const int64_t n = int64_t(1) << 20;
  { Tensor t = empty({n}, DType::F32, gpu); }
  EXPECT_EQ(memory_stats(gpu).driver_allocations, 1);
  { Tensor t = empty({n}, DType::F32, gpu); }
  EXPECT_EQ(memory_stats(gpu).driver_allocations, 1);
  EXPECT_EQ(memory_stats(gpu).cache_releases, 0);
  reset_peak_memory(gpu);
  EXPECT_EQ(memory_stats(gpu).driver_allocations, 0);
  const int64_t waits = cuda_host_waits();
  const Tensor on_gpu = ones({4}).to(gpu);
  EXPECT_EQ(cuda_host_waits(), waits);
  EXPECT_EQ(on_gpu.to_vector<double>(), std::vector<double>(4, 1.0));
  EXPECT_EQ(cuda_host_waits(), waits + 1);
}

// A HostRead queues its copy and waits only when its values are read before the copy landed;
// its page-locked blocks are reused read after read, and every read gets its own values.
TEST(MemoryCuda, HostReadQueuesItsCopyAndWaitsOnlyForIt) {
  SKIP_WITHOUT_GPU();
  const Device gpu = Device::cuda();
  const Tensor values = from_vector<int64_t>({3, -1, 7}, {3}).to(gpu);
  const Tensor square = from_vector<int64_t>({1, 2, 3, 4}, {2, 2}).to(gpu);
  const int64_t waits = cuda_host_waits();
  const HostRead read(values), transposed(square.t());
  EXPECT_EQ(cuda_host_waits(), waits);
  cuda::synchronize(gpu.index);
  EXPECT_EQ(read.values(), (std::vector<int64_t>{3, -1, 7}));
  EXPECT_EQ(transposed.values(), (std::vector<int64_t>{1, 3, 2, 4}));
  EXPECT_EQ(cuda_host_waits(), waits + 1);  // the synchronize only
  for (int64_t i = 0; i < 50; ++i) {
    const HostRead r(full({i * 100 + 1}, double(i), DType::I64, gpu));
    EXPECT_EQ(r.values(), std::vector<int64_t>(size_t(i * 100 + 1), i)) << i;
  }
}

// Uploads go through a 64 MiB pinned ring. While the device is busy the host runs ahead: half a
// ring of uploads never waits, and 100 MiB of uploads reuse the ring's bytes only once the
// copies reading them are done, so every upload arrives intact.
TEST(MemoryCuda, UploadsThroughTheStagingRingArriveIntactWithoutWaiting) {
  SKIP_WITHOUT_GPU();
  const Device gpu = Device::cuda();
  const Tensor a = ones({4096, 4096}, DType::F32, gpu);
  const int64_t n = int64_t(1) << 18;  // 1 MiB of int32
  synchronize(gpu);
  const int64_t waits = cuda_host_waits();
  std::vector<Tensor> uploaded;
  for (int32_t i = 0; i < 100; ++i) {
    if (i % 8 == 0) matmul(a, a);  // ~0.1 ms or more of device work ahead of the uploads
    uploaded.push_back(from_vector(std::vector<int32_t>(size_t(n), i), {n}).to(gpu));
    if (i == 31) {
      EXPECT_EQ(cuda_host_waits(), waits) << "the first 32 MiB waited";
    }
  }
  for (int32_t i = 0; i < 100; ++i) {
    const std::vector<int32_t> v = uploaded[size_t(i)].to_vector<int32_t>();
    EXPECT_EQ(std::count(v.begin(), v.end(), i), n) << "upload " << i;
  }
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

// How far category c rose above `base`: at its own peak, and now.
int64_t peak_rise(const MemoryReport& base, const MemoryReport& r, MemoryCategory c) {
  return r.peak[size_t(c)] - base.current[size_t(c)];
}
int64_t rise(const MemoryReport& base, const MemoryReport& r, MemoryCategory c) {
  return r.current[size_t(c)] - base.current[size_t(c)];
}

TEST(MemoryCuda, AnOpsScratchIsWorkspaceNotActivations) {
  SKIP_WITHOUT_GPU();
  const Device gpu = Device::cuda();
  const MemoryCategory ws = MemoryCategory::Workspace, act = MemoryCategory::Activations;
  const Tensor x = testing::random_tensor({6, 4}, 1, DType::F32, gpu);
  std::vector<Tensor> w;
  for (uint64_t g = 0; g < 3; ++g)
    w.push_back(testing::random_tensor({4, 5}, 2 + g, DType::F32, gpu));
  reset_peak_memory(gpu);
  MemoryReport base = memory_report(gpu);
  const Tensor out = grouped_matmul(x, w, {1, 2, 3}, false);
  MemoryReport r = memory_report(gpu);
  EXPECT_EQ(peak_rise(base, r, ws), 3 * 3 * 8);  // the device's table: 3 addresses per group
  EXPECT_EQ(rise(base, r, ws), 0);
  EXPECT_EQ(peak_rise(base, r, act), 6 * 5 * 4);  // the output alone
  EXPECT_EQ(rise(base, r, act), 6 * 5 * 4);

  reset_peak_memory(gpu);
  base = memory_report(gpu);
  const Tensor total = sum_of_squares(w);
  r = memory_report(gpu);
  EXPECT_GT(peak_rise(base, r, ws), 0);  // the table of tensors, the blocks' partial sums
  EXPECT_EQ(rise(base, r, ws), 0);
  EXPECT_EQ(peak_rise(base, r, act), 8);  // the one-element f64 result
  EXPECT_EQ(rise(base, r, act), 8);
}

}  // namespace
}  // namespace moegrad
