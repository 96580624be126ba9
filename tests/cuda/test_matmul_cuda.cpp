#include <algorithm>
#include <utility>

#include "autograd/ops/matmul.h"
#include "core/ops/matmul.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::group_starts;
using testing::random_tensor;

using testing::gpu;

using testing::same_view;

// cuBLAS and OpenBLAS sum in different orders, so f32 results agree only to rounding, which
// grows with K; an element near zero after cancellation needs the absolute part.
void expect_parity(const Tensor& a, const Tensor& b, bool ta, bool tb, const Tensor& ga,
                   const Tensor& gb) {
  Tensor cpu = matmul(a, b, ta, tb), cuda = matmul(ga, gb, ta, tb);
  EXPECT_TRUE(cuda.device().is_cuda());
  double k = double(ta ? a.size(-2) : a.size(-1));
  if (a.dtype() == DType::F64) {
    EXPECT_ALL_CLOSE(cuda, cpu, 1e-12, 1e-12);
  } else {
    EXPECT_ALL_CLOSE(cuda, cpu, 1e-6 * std::max(k, 10.0), 1e-5);
  }
}

TEST(MatmulCuda, TransposeCombinationsOddSizesBothDtypes) {
  SKIP_WITHOUT_GPU();
  const int64_t sizes[][3] = {{1, 1, 1}, {3, 17, 5}, {17, 3, 1}, {33, 65, 31}};
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64})
    for (const auto& s : sizes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          Tensor a = random_tensor(ta ? Shape{s[1], s[0]} : Shape{s[0], s[1]}, seed++, dt);
          Tensor b = random_tensor(tb ? Shape{s[2], s[1]} : Shape{s[1], s[2]}, seed++, dt);
          SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " M K N " << s[0] << " " << s[1]
                                            << " " << s[2] << " trans " << ta << tb);
          expect_parity(a, b, ta, tb, gpu(a), gpu(b));
        }
}

TEST(MatmulCuda, StridedViews) {
  SKIP_WITHOUT_GPU();
  Tensor base_a = random_tensor({7, 5}, 10, DType::F32), base_b = random_tensor({5, 12, 2}, 11, DType::F32);
  Tensor col_major = base_a.t();                         // [5, 7]
  Tensor padded = base_b.select(2, 0).narrow(1, 3, 7);   // [5, 7], row stride 24, col stride 2
  Tensor row_padded = random_tensor({7, 10}, 12, DType::F32);
  Tensor narrow_rows = row_padded.narrow(1, 1, 4);       // [7, 4], row-major with ld 10
  expect_parity(col_major, narrow_rows, false, false, same_view(col_major, gpu(base_a)),
                same_view(narrow_rows, gpu(row_padded)));
  expect_parity(padded, narrow_rows, false, false, same_view(padded, gpu(base_b)),
                same_view(narrow_rows, gpu(row_padded)));
  expect_parity(col_major, padded, false, true, same_view(col_major, gpu(base_a)),
                same_view(padded, gpu(base_b)));
}

TEST(MatmulCuda, BatchedWithBroadcasting) {
  SKIP_WITHOUT_GPU();
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const Case cases[] = {
      {{4, 3, 5}, {5, 2}, false, false},           // folded into one GEMM
      {{2, 3, 4, 5}, {2, 5}, false, true},
      {{3, 5}, {4, 5, 2}, false, false},           // a shared: strided-batched with stride 0
      {{4, 3, 5}, {4, 5, 2}, false, false},
      {{2, 3, 17, 8}, {2, 3, 17, 8}, false, true},
      {{2, 3, 8, 17}, {2, 3, 8, 5}, true, false},
      {{2, 1, 3, 5}, {1, 4, 5, 2}, false, false},  // two batch dims that do not merge
  };
  uint64_t seed = 20;
  for (const Case& c : cases) {
    Tensor a = random_tensor(c.a, seed++, DType::F32), b = random_tensor(c.b, seed++, DType::F32);
    SCOPED_TRACE(::testing::Message() << shape_str(c.a) << " x " << shape_str(c.b));
    expect_parity(a, b, c.ta, c.tb, gpu(a), gpu(b));
  }
}

TEST(MatmulCuda, NonContiguousBatches) {
  SKIP_WITHOUT_GPU();
  Tensor base_x = random_tensor({2, 4, 3, 5}, 30, DType::F32);
  Tensor base_y = random_tensor({2, 3, 3, 5}, 31, DType::F32);
  Tensor x = base_x.narrow(1, 1, 3), y = base_y.transpose(-2, -1);
  expect_parity(x, y, false, false, same_view(x, gpu(base_x)), same_view(y, gpu(base_y)));
  Tensor base_t = random_tensor({4, 2, 5}, 32, DType::F32), w = random_tensor({3, 5}, 33, DType::F32);
  Tensor t = base_t.transpose(0, 1);
  expect_parity(t, w, false, true, same_view(t, gpu(base_t)), gpu(w));
}

TEST(MatmulCuda, EmptyInnerDimAndLinear) {
  SKIP_WITHOUT_GPU();
  Tensor z = matmul(gpu(random_tensor({3, 0}, 40, DType::F32)), gpu(random_tensor({0, 4}, 41, DType::F32)));
  EXPECT_ALL_CLOSE(z, zeros({3, 4}), 0, 0);
  Tensor x = random_tensor({2, 3, 5}, 42, DType::F32), w = random_tensor({4, 5}, 43, DType::F32);
  EXPECT_ALL_CLOSE(linear(gpu(x), gpu(w)), linear(x, w), 1e-5, 1e-5);
}

TEST(MatmulCuda, GradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor a = random_tensor({2, 5, 3}, 50), b = random_tensor({4, 5}, 51), g = random_tensor({2, 3, 4}, 52);
  Tensor q = random_tensor({2, 3, 6}, 53), k = random_tensor({2, 3, 6}, 54), gs = random_tensor({2, 3, 3}, 55);
  auto grads = [&](Device dev) {
    Variable va(a.to(dev), true), vb(b.to(dev), true), vq(q.to(dev), true), vk(k.to(dev), true);
    matmul(va, vb, true, true).backward(g.to(dev));
    matmul(vq, vk, false, true).backward(gs.to(dev));
    return std::vector<Tensor>{va.grad(), vb.grad(), vq.grad(), vk.grad()};
  };
  std::vector<Tensor> cpu = grads(Device::cpu()), cuda = grads(Device::cuda());
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_ALL_CLOSE(cuda[i], cpu[i], 1e-12, 1e-12);
}

// Odd sizes, empty groups (an expert no token chose) and a non-contiguous input, in both dtypes;
// then the weight-gradient form (in two column blocks) and grouped_linear's gradients.
TEST(MatmulCuda, GroupedMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> rows = {0, 33, 1, 0, 70, 5};
  uint64_t seed = 60;
  for (DType dt : {DType::F32, DType::F64})
    for (bool trans : {true, false}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " trans " << trans);
      Tensor base = random_tensor({37, 109}, seed++, dt);
      Tensor x = base.t();  // [109, 37], column-major
      std::vector<Tensor> w, wg;
      for (size_t g = 0; g < rows.size(); ++g) {
        w.push_back(random_tensor(trans ? Shape{19, 37} : Shape{37, 19}, seed++, dt));
        wg.push_back(gpu(w[g]));
      }
      Tensor cpu = grouped_matmul(x, w, rows, trans);
      Tensor cuda = grouped_matmul(same_view(x, gpu(base)), wg, rows, trans);
      EXPECT_TRUE(cuda.device().is_cuda());
      EXPECT_ALL_CLOSE(cuda, cpu, dt == DType::F64 ? 1e-12 : 1e-4, 1e-5);
    }
  // Two column blocks of a (gate and up run as one GEMM): lda is twice a block's width.
  Tensor a = random_tensor({109, 38}, 80, DType::F32), b = random_tensor({109, 37}, 81, DType::F32);
  const std::vector<bool> want = {true, true, false, true, true, true,
                                  false, true, true, true, true, true};
  std::vector<Tensor> cpu = grouped_matmul_tn(a, b, rows, want);
  std::vector<Tensor> cuda = grouped_matmul_tn(gpu(a), gpu(b), rows, want);
  for (size_t g = 0; g < want.size(); ++g) {
    ASSERT_EQ(cuda[g].defined(), want[g]);
    if (want[g]) {
      EXPECT_ALL_CLOSE(cuda[g], cpu[g], 1e-4, 1e-5);
    }
  }
}

TEST(MatmulCuda, GroupedLinearGradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> rows = {3, 0, 4};
  for (const auto& [dtype, tol] : {std::pair{DType::F64, 1e-12}, std::pair{DType::BF16, 1e-2}}) {
    Tensor x = random_tensor({7, 5}, 90, dtype), g = random_tensor({7, 2}, 91, dtype);
    std::vector<Tensor> w = {random_tensor({2, 5}, 92, dtype), random_tensor({2, 5}, 93, dtype),
                             random_tensor({2, 5}, 94, dtype)};
    auto grads = [&](Device dev) {
      Variable vx(x.to(dev), true);
      std::vector<Variable> vw;
      for (const Tensor& t : w) vw.emplace_back(t.to(dev), true);
      grouped_linear(vx, vw, rows).backward(g.to(dev));
      return std::vector<Tensor>{vx.grad(), vw[0].grad(), vw[1].grad(), vw[2].grad()};
    };
    std::vector<Tensor> cpu = grads(Device::cpu()), cuda = grads(Device::cuda());
    for (size_t i = 0; i < cpu.size(); ++i) {
      EXPECT_EQ(cuda[i].dtype(), dtype);
      EXPECT_ALL_CLOSE(cuda[i], cpu[i], tol, tol);
    }
  }
}

// bf16 on the GPU (cuBLAS, f32 accumulation, one rounding) against bf16 on the CPU (sgemm on
// widened operands, one rounding): the f32 sums differ only in order, so the results are
// within a bf16 step.
void expect_bf16_parity(const Tensor& a, const Tensor& b, bool ta, bool tb, const Tensor& ga,
                        const Tensor& gb) {
  Tensor cpu = matmul(a, b, ta, tb), cuda = matmul(ga, gb, ta, tb);
  EXPECT_TRUE(cuda.device().is_cuda());
  EXPECT_EQ(cuda.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(cuda, cpu, 1e-2, 1e-2);
}

Tensor bf16_random(const Shape& shape, uint64_t seed) {
  return random_tensor(shape, seed, DType::BF16);
}

TEST(MatmulCudaBf16, TransposesOddSizesViewsAndBatches) {
  SKIP_WITHOUT_GPU();
  const int64_t sizes[][3] = {{1, 1, 1}, {37, 53, 19}, {33, 65, 31}};
  uint64_t seed = 100;
  for (const auto& s : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Tensor a = bf16_random(ta ? Shape{s[1], s[0]} : Shape{s[0], s[1]}, seed++);
        Tensor b = bf16_random(tb ? Shape{s[2], s[1]} : Shape{s[1], s[2]}, seed++);
        SCOPED_TRACE(::testing::Message() << "M K N " << s[0] << " " << s[1] << " " << s[2]
                                          << " trans " << ta << tb);
        expect_bf16_parity(a, b, ta, tb, gpu(a), gpu(b));
      }
  // Column-major, padded rows (ld 10) and a batch that does not fold, as views on the device.
  Tensor base_a = bf16_random({53, 37}, seed++), row_padded = bf16_random({53, 30}, seed++);
  Tensor col_major = base_a.t(), narrow_rows = row_padded.narrow(1, 3, 19);
  expect_bf16_parity(col_major, narrow_rows, false, false, same_view(col_major, gpu(base_a)),
                     same_view(narrow_rows, gpu(row_padded)));
  Tensor base_x = bf16_random({2, 4, 3, 5}, seed++), base_y = bf16_random({2, 3, 3, 5}, seed++);
  Tensor x = base_x.narrow(1, 1, 3), y = base_y.transpose(-2, -1);
  expect_bf16_parity(x, y, false, false, same_view(x, gpu(base_x)), same_view(y, gpu(base_y)));
  // Strided-batched with a shared (stride 0) operand, and broadcast batch dims.
  Tensor s = bf16_random({3, 5}, seed++), t = bf16_random({4, 5, 2}, seed++);
  expect_bf16_parity(s, t, false, false, gpu(s), gpu(t));
  Tensor u = bf16_random({2, 1, 3, 5}, seed++), v = bf16_random({1, 4, 5, 2}, seed++);
  expect_bf16_parity(u, v, false, false, gpu(u), gpu(v));
}

// Odd sizes, empty groups and a column-major input through cublasGemmGroupedBatchedEx; the
// weight-gradient form in two column blocks; grouped_linear's bf16 gradients.
TEST(MatmulCudaBf16, GroupedMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> rows = {0, 33, 1, 0, 70, 5};
  uint64_t seed = 160;
  for (bool trans : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "trans " << trans);
    Tensor base = bf16_random({53, 109}, seed++);
    Tensor x = base.t();  // [109, 53], column-major
    std::vector<Tensor> w, wg;
    for (size_t g = 0; g < rows.size(); ++g) {
      w.push_back(bf16_random(trans ? Shape{19, 53} : Shape{53, 19}, seed++));
      wg.push_back(gpu(w[g]));
    }
    Tensor cuda = grouped_matmul(same_view(x, gpu(base)), wg, rows, trans);
    EXPECT_TRUE(cuda.device().is_cuda());
    EXPECT_EQ(cuda.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(cuda, grouped_matmul(x, w, rows, trans), 1e-2, 1e-2);
  }
  // Groups that start at odd rows of these narrow matrices have addresses that are not 16-byte
  // aligned, which cuBLAS's grouped call cannot take: they run as single GEMMs.
  Tensor a = bf16_random({109, 38}, 180), b = bf16_random({109, 37}, 181);
  const std::vector<bool> want = {true, true, false, true, true, true,
                                  false, true, true, true, true, true};
  std::vector<Tensor> cpu = grouped_matmul_tn(a, b, rows, want);
  std::vector<Tensor> cuda = grouped_matmul_tn(gpu(a), gpu(b), rows, want);
  for (size_t g = 0; g < want.size(); ++g) {
    ASSERT_EQ(cuda[g].defined(), want[g]);
    if (want[g]) {
      EXPECT_EQ(cuda[g].dtype(), DType::BF16);
      EXPECT_ALL_CLOSE(cuda[g], cpu[g], 1e-2, 1e-2);
    }
  }
}

// moegrad's own grouped GEMM against the CPU: groups of 0, 1, a tile and more than a tile of rows,
// K not a multiple of the 32-column step, in fewer steps than the pipeline's 4 buffers, as many as
// it loads ahead (3) and 17 (its buffers reused four times), N not a multiple of the 128-column
// tile, a gather that repeats rows (int32, int64) or none, both weight layouts; the same bits
// twice.
TEST(MatmulCudaBf16, GatheredGroupedKernelMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> counts = {0, 130, 1, 0, 257, 5, 128, 0};
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  const int64_t groups = int64_t(counts.size()), sources = 300;
  uint64_t seed = 500;
  for (auto [k, n] : {std::pair<int64_t, int64_t>{8, 8}, {40, 200}, {136, 24}, {64, 256}, {96, 136},
                      {520, 40}})
    for (bool trans : {true, false})
      for (DType index : {DType::I32, DType::I64, DType::F32 /* no rows */}) {
        SCOPED_TRACE(::testing::Message() << "K " << k << " N " << n << " trans " << trans
                                          << " rows " << dtype_name(index));
        const bool gathered = index != DType::F32;
        const Tensor x = bf16_random({gathered ? sources : total, k}, seed++);
        const Tensor w = bf16_random(trans ? Shape{groups, n, k} : Shape{groups, k, n}, seed++);
        const Tensor rows =
            gathered ? testing::skewed_index({total}, sources, seed++, index) : Tensor();
        const Tensor start = group_starts(counts);
        const Tensor gx = gpu(x), gw = gpu(w), grows = gathered ? gpu(rows) : Tensor();
        ASSERT_TRUE(cuda::gathered_grouped_gemm_fits(gx, gw, total, trans));
        const Tensor cuda = gathered_grouped_matmul(gx, grows, gw, gpu(start), trans);
        EXPECT_TRUE(cuda.device().is_cuda());
        EXPECT_EQ(cuda.dtype(), DType::BF16);
        EXPECT_ALL_CLOSE(cuda, gathered_grouped_matmul(x, rows, w, start, trans), 1e-2, 1e-2);
        EXPECT_ALL_CLOSE(gathered_grouped_matmul(gx, grows, gw, gpu(start), trans), cuda, 0, 0);
      }
}

// The weight-gradient kernel against the CPU: the same groups (one of 257 rows: 9 steps of 32
// rows with a partial last one), M and N not multiples of the 128 tile, picks of either operand's
// rows, of both (also of two index types) or none; the same bits twice.
TEST(MatmulCudaBf16, GatheredGroupedWeightGradientKernelMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> counts = {0, 130, 1, 0, 257, 5, 128, 0};
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  const int64_t sources = 300;
  const DType none = DType::F32;
  const std::vector<std::pair<DType, DType>> picks = {
      {none, DType::I32},      {none, DType::I64}, {none, none},
      {DType::I32, none},      {DType::I64, none}, {DType::I32, DType::I32},
      {DType::I32, DType::I64}};
  uint64_t seed = 540;
  for (auto [m, n] : {std::pair<int64_t, int64_t>{8, 8}, {40, 200}, {136, 24}, {256, 64}})
    for (auto [a_index, b_index] : picks) {
      SCOPED_TRACE(::testing::Message()
                   << "M " << m << " N " << n << " a picks " << dtype_name(a_index) << " b picks "
                   << dtype_name(b_index));
      auto rows_of = [&](DType index) {
        return index != none ? testing::skewed_index({total}, sources, seed++, index) : Tensor();
      };
      const Tensor a_rows = rows_of(a_index), b_rows = rows_of(b_index);
      const Tensor a = bf16_random({a_rows.defined() ? sources : total, m}, seed++);
      const Tensor b = bf16_random({b_rows.defined() ? sources : total, n}, seed++);
      const Tensor start = group_starts(counts);
      auto gpu_rows = [](const Tensor& rows) { return rows.defined() ? gpu(rows) : Tensor(); };
      const Tensor ga = gpu(a), gb = gpu(b), ga_rows = gpu_rows(a_rows), gb_rows = gpu_rows(b_rows);
      ASSERT_TRUE(cuda::gathered_grouped_gemm_tn_fits(ga, gb, int64_t(counts.size())));
      const Tensor cuda = gathered_grouped_matmul_tn(ga, ga_rows, gb, gb_rows, gpu(start));
      EXPECT_TRUE(cuda.device().is_cuda());
      EXPECT_EQ(cuda.shape(), (Shape{int64_t(counts.size()), m, n}));
      EXPECT_ALL_CLOSE(cuda, gathered_grouped_matmul_tn(a, a_rows, b, b_rows, start), 1e-2, 1e-2);
      EXPECT_ALL_CLOSE(gathered_grouped_matmul_tn(ga, ga_rows, gb, gb_rows, gpu(start)), cuda, 0,
                       0);
    }
}

// 1000 groups, most empty or small, against one 128-row tile's worth: the schedule's binary search
// over many groups; and operands the kernel does not take (f32, K not a multiple of 8) through the
// host path, with the same results as the CPU.
TEST(MatmulCudaBf16, GatheredGroupedManyGroupsAndTheHostPath) {
  SKIP_WITHOUT_GPU();
  std::vector<int64_t> counts(1000, 0);
  for (size_t g = 0; g < counts.size(); g += 7) counts[g] = int64_t(g % 13);
  counts[500] = 300;
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  const Tensor x = bf16_random({total, 16}, 520), w = bf16_random({1000, 24, 16}, 521);
  const Tensor start = group_starts(counts);
  EXPECT_ALL_CLOSE(gathered_grouped_matmul(gpu(x), Tensor(), gpu(w), gpu(start), true),
                   gathered_grouped_matmul(x, Tensor(), w, start, true), 1e-2, 1e-2);
  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t k = dt == DType::F32 ? 16 : 7;
    const Tensor x2 = random_tensor({total, k}, 522, dt), w2 = random_tensor({1000, k, 8}, 523, dt);
    EXPECT_FALSE(cuda::gathered_grouped_gemm_fits(gpu(x2), gpu(w2), total, false));
    const double tol = dt == DType::F32 ? 1e-5 : 1e-2;
    EXPECT_ALL_CLOSE(gathered_grouped_matmul(gpu(x2), Tensor(), gpu(w2), gpu(start), false),
                     gathered_grouped_matmul(x2, Tensor(), w2, start, false), tol, tol);
  }
}

}  // namespace
}  // namespace moegrad
