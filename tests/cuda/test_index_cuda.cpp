#include <functional>

#include "core/ops/index.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

Tensor random_index(const Shape& shape, int64_t high, uint64_t seed, DType dtype) {
  Generator gen(seed);
  return randint(0, high, shape, gen, dtype);
}

using testing::gpu;

// Both backends sum in index order, so the results agree bit for bit.
TEST(IndexCuda, SelectAndGatherMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_tensor({37, 5, 3}, 1, DType::F32).permute({1, 0, 2});  // [5, 37, 3]
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t d = 0; d < 3; ++d) {
      Tensor idx = random_index({23}, x.size(d), 2 + d, it);
      EXPECT_ALL_CLOSE(index_select(gpu(x), d, gpu(idx)), index_select(x, d, idx), 0, 0);
      Shape s{4, 30, 2};
      s[d] = 11;
      Tensor gi = random_index(s, x.size(d), 10 + d, it).transpose(0, 1);
      Tensor xs = x.transpose(0, 1);
      int64_t gd = d == 0 ? 1 : d == 1 ? 0 : 2;
      EXPECT_ALL_CLOSE(gather(gpu(xs), gd, gpu(gi)), gather(xs, gd, gi), 0, 0);
    }
  }
}

TEST(IndexCuda, IndexAddMatchesCpuWithManyDuplicates) {
  SKIP_WITHOUT_GPU();
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t d = 0; d < 3; ++d) {
      Tensor x = random_tensor({6, 7, 33}, 20 + d, DType::F32);
      Shape s = x.shape();
      s[d] = 301;
      Tensor idx = random_index({301}, x.size(d), 30 + d, it);
      Tensor src = random_tensor({s[2], s[1], s[0]}, 40 + d, DType::F32).permute({2, 1, 0});
      Tensor cpu = index_add(x, d, idx, src);
      Tensor cuda = index_add(gpu(x), d, gpu(idx), gpu(src));
      EXPECT_ALL_CLOSE(cuda, cpu, 0, 0);
      EXPECT_ALL_CLOSE(index_add(gpu(x), d, gpu(idx), gpu(src)), cuda, 0, 0);  // run to run
      EXPECT_ALL_CLOSE(index_add_to_zeros(x.shape(), d, gpu(idx), gpu(src)),
                       index_add_to_zeros(x.shape(), d, idx, src), 0, 0);
    }
  }
}

// index_select of rows that split into 16-byte vectors copies vectors: rows picked with repeats
// from a matrix, from a batch (dim 1), from a view whose rows are 80 apart, and (no vectors)
// from a view that starts mid-vector or along the last dim.
TEST(IndexCuda, IndexSelectOfVectorRowsMatchesCpu) {
  SKIP_WITHOUT_GPU();
  uint64_t seed = 50;
  for (DType dt : {DType::BF16, DType::F32, DType::F64}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor x = random_tensor({50, 64}, seed++, dt), gx = gpu(x);
    const Tensor idx = random_index({131}, 50, seed++, DType::I32), gidx = gpu(idx);
    EXPECT_ALL_CLOSE(index_select(gx, 0, gidx), index_select(x, 0, idx), 0, 0);
    const Tensor batch = random_tensor({3, 50, 16}, seed++, dt);
    EXPECT_ALL_CLOSE(index_select(gpu(batch), 1, gidx), index_select(batch, 1, idx), 0, 0);
    const Tensor wide = random_tensor({50, 80}, seed++, dt), gwide = gpu(wide);
    EXPECT_ALL_CLOSE(index_select(gwide.narrow(1, 8, 64), 0, gidx),
                     index_select(wide.narrow(1, 8, 64), 0, idx), 0, 0);
    EXPECT_ALL_CLOSE(index_select(gwide.narrow(1, 1, 64), 0, gidx),
                     index_select(wide.narrow(1, 1, 64), 0, idx), 0, 0);
    const Tensor cols = random_index({24}, 64, seed++, DType::I64);
    EXPECT_ALL_CLOSE(index_select(gx, 1, gpu(cols)), index_select(x, 1, cols), 0, 0);
  }
}

// Rows of whole 16-byte vectors (bf16 of 8k, f32 of 4k elements) take the vector kernel: the
// same sums in the same order, so the CPU's bits, also for rows no index names and in a batch
// (dim 1); rows of 12 bf16 do not split into vectors and take the element kernel.
TEST(IndexCuda, IndexAddOfVectorRowsMatchesCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  uint64_t seed = 60;
  for (auto [dt, width] : {std::pair{DType::BF16, int64_t(64)}, {DType::BF16, int64_t(12)},
                           {DType::F32, int64_t(12)}, {DType::F32, int64_t(1032)}})
    for (int64_t d : {0, 1}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " width " << width << " dim " << d);
      const Tensor x = random_tensor({3, 40, width}, seed++, dt);
      Shape s = x.shape();
      s[d] = 333;
      // Every index below half the rows: the upper half gets no source row.
      const Tensor idx = random_index({333}, x.size(d) / 2, seed++, DType::I32);
      const Tensor src = random_tensor(s, seed++, dt);
      EXPECT_ALL_CLOSE(index_add(gpu(x), d, gpu(idx), gpu(src)), index_add(x, d, idx, src), 0, 0);
      EXPECT_ALL_CLOSE(index_add_to_zeros(x.shape(), d, gpu(idx), gpu(src)),
                       index_add_to_zeros(x.shape(), d, idx, src), 0, 0);
    }
}

TEST(IndexCuda, ScatterAddMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t d = 0; d < 3; ++d) {
      Tensor x = random_tensor({9, 5, 13}, 50 + d, DType::F64);
      Shape s{7, 4, 11};
      s[d] = 29;
      Tensor idx = random_index(s, x.size(d), 60 + d, it).transpose(0, 2).contiguous().transpose(0, 2);
      Tensor src = random_tensor(s, 70 + d, DType::F64);
      EXPECT_ALL_CLOSE(scatter_add(gpu(x), d, gpu(idx), gpu(src)), scatter_add(x, d, idx, src), 0, 0);
    }
  }
  Tensor e = from_vector<int32_t>({3, 0, 3, 1, 3}, {5});
  Tensor counts = scatter_add(gpu(zeros({4}, DType::I64)), 0, gpu(e), gpu(ones({5}, DType::I64)));
  EXPECT_EQ(counts.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 3}));
}

// The same stable order, rows and starts: a radix sort on the device, a counting sort on the
// host. Skewed values leave groups empty; sizes straddle the radix sort's tiles.
TEST(IndexCuda, GroupByIndexMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t groups : {1, 3, 64, 1000}) {
      for (int64_t n : {1, 37, 4097}) {
        const Tensor idx = testing::skewed_index({n, 8}, groups, uint64_t(groups * 7 + n), it);
        const IndexGroups cpu = group_by_index(idx, groups, "experts");
        const IndexGroups cuda = group_by_index(gpu(idx), groups, "experts");
        EXPECT_TRUE(cuda.order.device().is_cuda());
        EXPECT_EQ(cuda.order.to_vector<int32_t>(), cpu.order.to_vector<int32_t>());
        EXPECT_EQ(cuda.row.to_vector<int32_t>(), cpu.row.to_vector<int32_t>());
        EXPECT_EQ(cuda.start, cpu.start);
      }
    }
  }
  // A transposed [k, N] view of the indices groups as its values read in row order.
  const Tensor t = from_vector<int64_t>({2, 0, 1, 2, 0, 1}, {2, 3}).transpose(0, 1);
  EXPECT_EQ(group_by_index(gpu(t), 3, "experts").order.to_vector<int32_t>(),
            group_by_index(t, 3, "experts").order.to_vector<int32_t>());
  EXPECT_EQ(testing::error_of([&] {
              group_by_index(gpu(from_vector<int64_t>({1, 70, 0, 2}, {2, 2})), 64, "experts");
            }),
            "group_by_index: index 70 out of range [0, 64) for experts");
  EXPECT_EQ(testing::error_of([&] {
              group_by_index(gpu(from_vector<int32_t>({1, -5}, {1, 2})), 64, "experts");
            }),
            "group_by_index: index -5 out of range [0, 64) for experts");
}

// The starts stay on the device: grouping waits for nothing, and a value out of range is
// reported when the host first reads them.
TEST(IndexCuda, GroupByIndexOnDeviceWaitsForNothing) {
  SKIP_WITHOUT_GPU();
  const Tensor idx = testing::skewed_index({513, 8}, 64, 21, DType::I32);
  const IndexGroups cpu = group_by_index(idx, 64, "experts");
  const Tensor on_gpu = gpu(idx);
  const int64_t waits = cuda_host_waits();
  const DeviceIndexGroups dev = group_by_index_on_device(on_gpu, 64, "experts");
  EXPECT_EQ(cuda_host_waits(), waits);
  EXPECT_TRUE(dev.start.device().is_cuda());
  EXPECT_EQ(dev.start.to_vector<int64_t>(), cpu.start);
  EXPECT_EQ(dev.host_start(), cpu.start);
  EXPECT_EQ(dev.order.to_vector<int32_t>(), cpu.order.to_vector<int32_t>());
  const DeviceIndexGroups bad =
      group_by_index_on_device(gpu(from_vector<int64_t>({1, 70, 0, 2}, {2, 2})), 64, "experts");
  EXPECT_EQ(testing::error_of([&] { bad.host_start(); }),
            "group_by_index: index 70 out of range [0, 64) for experts");
}

TEST(IndexCuda, OneHotAndBadIndices) {
  SKIP_WITHOUT_GPU();
  Tensor idx = from_vector<int64_t>({2, 0, 1}, {3});
  EXPECT_EQ(one_hot(gpu(idx), 3).to_vector<int64_t>(), one_hot(idx, 3).to_vector<int64_t>());
  Tensor x = gpu(zeros({5, 3}));
  try {
    index_select(x, 0, gpu(from_vector<int32_t>({1, 7, -2, 0}, {4})));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "index_select: index -2 out of range [0, 5) for dim 0 of input shape [5, 3]");
  }
  EXPECT_THROW(gather(x, 0, gpu(from_vector<int64_t>({5}, {1, 1}))), Error);
  EXPECT_THROW(index_add(x, 0, gpu(from_vector<int64_t>({9}, {1})), gpu(zeros({1, 3}))), Error);
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

// bf16 index_add sums in f32 in index order and rounds once on both backends; scatter_add
// rounds each addition on both: bit for bit.
TEST(IndexCuda, Bf16MatchesCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  Tensor x = random_tensor({37, 5, 3}, 80, DType::BF16).permute({1, 0, 2});  // [5, 37, 3]
  for (int64_t d = 0; d < 3; ++d) {
    Tensor idx = random_index({23}, x.size(d), 81 + d, DType::I32);
    EXPECT_ALL_CLOSE(index_select(gpu(x), d, gpu(idx)), index_select(x, d, idx), 0, 0);
    Tensor base = random_tensor({6, 7, 33}, 84 + d, DType::BF16);
    Shape s = base.shape();
    s[d] = 301;
    Tensor aidx = random_index({301}, base.size(d), 87 + d, DType::I64);
    Tensor src = random_tensor({s[2], s[1], s[0]}, 90 + d, DType::BF16).permute({2, 1, 0});
    Tensor cuda = index_add(gpu(base), d, gpu(aidx), gpu(src));
    EXPECT_EQ(cuda.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(cuda, index_add(base, d, aidx, src), 0, 0);
    Shape gs{4, 5, 2};
    gs[d] = 29;
    Tensor sidx = random_index(gs, base.size(d), 93 + d, DType::I64);
    Tensor ssrc = random_tensor(gs, 96 + d, DType::BF16);
    EXPECT_ALL_CLOSE(scatter_add(gpu(base), d, gpu(sidx), gpu(ssrc)),
                     scatter_add(base, d, sidx, ssrc), 0, 0);
  }
  // No index at all for most rows (an expert that receives no token).
  Tensor rows = random_tensor({8, 3}, 99, DType::BF16);
  Tensor one = from_vector<int64_t>({2, 2}, {2});
  Tensor src = random_tensor({2, 3}, 100, DType::BF16);
  EXPECT_ALL_CLOSE(index_add(gpu(rows), 0, gpu(one), gpu(src)), index_add(rows, 0, one, src), 0, 0);
}

}  // namespace
}  // namespace moegrad
