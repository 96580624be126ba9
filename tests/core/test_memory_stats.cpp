#include <vector>

#include "core/ops/attention.h"
#include "core/ops/softmax.h"
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

// A small block an op lets go of is the next one of its size handed out (the host allocator's
// free lists), still 64-byte aligned and counted once while in use.
TEST(MemoryStats, HostReusesAFreedSmallBlock) {
  const Device cpu = Device::cpu();
  const int64_t before = memory_stats(cpu).current_bytes;
  for (int64_t n : {1, 16, 17, 1000, 30000}) {
    const void* first = nullptr;
    {
      Tensor t = empty({n});
      first = t.data_ptr();
      EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u) << n;
      EXPECT_EQ(memory_stats(cpu).current_bytes, before + (n * 4 + 63) / 64 * 64) << n;
    }
    EXPECT_EQ(memory_stats(cpu).current_bytes, before) << n;
    Tensor again = empty({n});
    EXPECT_EQ(again.data_ptr(), first) << n;
  }
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

int64_t category_bytes(MemoryCategory c) {
  return memory_report(Device::cpu()).current[size_t(c)];
}

TEST(MemoryCategories, ScopesFileNewStoragesAndSetCategoryRefilesThem) {
  const int64_t act = category_bytes(MemoryCategory::Activations);
  const int64_t grads = category_bytes(MemoryCategory::Gradients);
  const int64_t weights = category_bytes(MemoryCategory::Weights);
  Tensor a = empty({1000}, DType::F32);  // outside any scope: activations
  EXPECT_EQ(a.storage()->category(), MemoryCategory::Activations);
  EXPECT_EQ(category_bytes(MemoryCategory::Activations), act + 4000);
  {
    MemoryCategoryScope outer(MemoryCategory::Gradients);
    Tensor g = empty({500}, DType::F64);
    {
      MemoryCategoryScope inner(MemoryCategory::OptimizerState);
      EXPECT_EQ(empty({1}).storage()->category(), MemoryCategory::OptimizerState);
    }
    EXPECT_EQ(g.storage()->category(), MemoryCategory::Gradients);
    EXPECT_EQ(category_bytes(MemoryCategory::Gradients), grads + 4000);
  }
  EXPECT_EQ(category_bytes(MemoryCategory::Gradients), grads);  // freed with its tensor
  EXPECT_EQ(empty({1}).storage()->category(), MemoryCategory::Activations);  // scopes ended

  a.storage()->set_category(MemoryCategory::Weights);
  EXPECT_EQ(category_bytes(MemoryCategory::Activations), act);
  EXPECT_EQ(category_bytes(MemoryCategory::Weights), weights + 4000);
  a = Tensor();
  EXPECT_EQ(category_bytes(MemoryCategory::Weights), weights);
}

TEST(MemoryCategories, ThePeakRemembersWhatWasInMemoryAtTheTop) {
  const Device cpu = Device::cpu();
  reset_peak_memory(cpu);
  const MemoryReport base = memory_report(cpu);
  Tensor w = empty({1 << 18}, DType::F32);  // 1 MiB
  w.storage()->set_category(MemoryCategory::Weights);
  { Tensor act = empty({1 << 19}, DType::F32); }  // 2 MiB at the top, then gone
  Tensor small = empty({1 << 10}, DType::F32);
  const MemoryReport r = memory_report(cpu);
  EXPECT_EQ(r.peak_total, base.total() + 3 * (1 << 20));
  EXPECT_EQ(r.at_peak[size_t(MemoryCategory::Activations)],
            base.current[size_t(MemoryCategory::Activations)] + 2 * (1 << 20));
  EXPECT_EQ(r.at_peak[size_t(MemoryCategory::Weights)],
            base.current[size_t(MemoryCategory::Weights)] + (1 << 20));
  EXPECT_EQ(r.peak[size_t(MemoryCategory::Activations)],
            base.current[size_t(MemoryCategory::Activations)] + 2 * (1 << 20));
  EXPECT_EQ(r.current[size_t(MemoryCategory::Activations)],
            base.current[size_t(MemoryCategory::Activations)] + 4096);
}

TEST(MemoryCategories, AnAllocationPastTheLimitFailsNamingWhatIsInUse) {
  const Device cpu = Device::cpu();
  const int64_t in_use = memory_report(cpu).total();
  set_memory_limit(cpu, in_use + (1 << 20));
  std::string message;
  {
    Tensor fits = empty({1 << 17}, DType::F32);  // 512 KiB: fits
    fits.storage()->set_category(MemoryCategory::Weights);
    MemoryCategoryScope state(MemoryCategory::OptimizerState);
    try {
      empty({1 << 18}, DType::F32);  // 1 MiB more: does not
    } catch (const OutOfMemory& e) {
      message = e.what();
    }
    EXPECT_EQ(memory_report(cpu).total(), in_use + (1 << 19));  // the failed one is not counted
  }
  set_memory_limit(cpu, 0);
  EXPECT_NE(message.find("out of memory on cpu: tried to allocate 1.00 MiB for optimizer state"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(" in use; the memory limit set for cpu is "), std::string::npos) << message;
  for (const char* part :
       {"weights ", "gradients ", "optimizer state ", "activations ", "workspace "})
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  EXPECT_NO_THROW(empty({1 << 18}, DType::F32));  // no limit any more
  EXPECT_THROW(set_memory_limit(cpu, -1), Error);
}

TEST(MemoryCategories, BreakdownNamesEveryCategoryWithItsSize) {
  EXPECT_EQ(memory_breakdown({int64_t(3) << 30, 0, 1536, 100, 2048}),
            "3.00 GiB (weights 3.00 GiB, gradients 0 B, optimizer state 1.50 KiB, activations "
            "100 B, workspace 2.00 KiB)");
  EXPECT_STREQ(memory_category_name(MemoryCategory::Workspace), "workspace");
}

// How far each category rose above `base` at its own peak, and where it is now.
struct Rise {
  int64_t peak, now;
};
Rise rise(const MemoryReport& base, const MemoryReport& r, MemoryCategory c) {
  const size_t i = size_t(c);
  return {r.peak[i] - base.current[i], r.current[i] - base.current[i]};
}

TEST(MemoryCategories, AnOpsCopyOfItsInputIsWorkspaceNotActivations) {
  const Device cpu = Device::cpu();
  // Transposed: softmax along the last dim reads a contiguous copy.
  const Tensor x = testing::random_tensor({64, 32}, 1, DType::F32).transpose(0, 1);
  const int64_t bytes = 32 * 64 * 4;
  reset_peak_memory(cpu);
  const MemoryReport base = memory_report(cpu);
  const Tensor y = softmax(x, -1);
  const MemoryReport r = memory_report(cpu);
  const Rise ws = rise(base, r, MemoryCategory::Workspace);
  const Rise act = rise(base, r, MemoryCategory::Activations);
  EXPECT_EQ(ws.peak, bytes);  // the copy, gone with the op
  EXPECT_EQ(ws.now, 0);
  EXPECT_EQ(act.peak, bytes);  // the output alone
  EXPECT_EQ(act.now, bytes);
  EXPECT_EQ(y.storage()->category(), MemoryCategory::Activations);
}

TEST(MemoryCategories, GroupedAttentionsPerHeadSlotsAreWorkspace) {
  const Device cpu = Device::cpu();
  // 4 query heads over 2 kv heads: the CPU backward sums dK and dV over a [B, H, S, D] slot each.
  const int64_t B = 1, H = 4, Hkv = 2, T = 8, D = 4;
  const Tensor q = testing::random_tensor({B, H, T, D}, 2, DType::F32);
  const Tensor k = testing::random_tensor({B, Hkv, T, D}, 3, DType::F32);
  const Tensor v = testing::random_tensor({B, Hkv, T, D}, 4, DType::F32);
  const Tensor grad = testing::random_tensor({B, H, T, D}, 5, DType::F32);
  const AttentionOutput fwd = attention_forward(q, k, v, true);
  reset_peak_memory(cpu);
  const MemoryReport base = memory_report(cpu);
  const AttentionGrads g = attention_backward(grad, q, k, v, fwd.out, fwd.lse, true);
  const MemoryReport r = memory_report(cpu);
  const int64_t f32 = 4;
  const Rise ws = rise(base, r, MemoryCategory::Workspace);
  const Rise act = rise(base, r, MemoryCategory::Activations);
  EXPECT_EQ(ws.peak, 2 * B * H * T * D * f32);
  EXPECT_EQ(ws.now, 0);
  EXPECT_EQ(act.peak, (B * H * T * D + 2 * B * Hkv * T * D) * f32);  // dq, dk, dv
  EXPECT_EQ(act.now, act.peak);
}

TEST(MemoryCategories, WorkspaceNestsLikeAnyScope) {
  MemoryCategoryScope grads(MemoryCategory::Gradients);
  {
    MemoryCategoryScope workspace(MemoryCategory::Workspace);
    EXPECT_EQ(empty({1}).storage()->category(), MemoryCategory::Workspace);
  }
  EXPECT_EQ(empty({1}).storage()->category(), MemoryCategory::Gradients);
}

}  // namespace
}  // namespace moegrad
