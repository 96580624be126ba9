#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/device.h"
#include "core/ops/cross_entropy.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

// Targets in [0, V), every row n with n % ignore_every == 1 set to ignore_index (none when
// ignore_every is 0), as int32 or int64.
Tensor make_targets(int64_t N, int64_t V, uint64_t seed, DType dtype, int64_t ignore_index,
                    int64_t ignore_every) {
  Generator gen(seed);
  std::vector<int64_t> t = randint(0, V, {N}, gen).to_vector<int64_t>();
  for (int64_t n = 0; n < N; ++n)
    if (ignore_every > 0 && n % ignore_every == 1) t[size_t(n)] = ignore_index;
  if (dtype == DType::I64) return from_vector(t, {N});
  return from_vector(std::vector<int32_t>(t.begin(), t.end()), {N});
}

// Forward (loss and lse) and backward on the GPU against the CPU, for logits given on both
// devices (so that a view can be built on each). bf16 logits have an f32 loss and lse, take an
// f32 upstream gradient and give a bf16 dlogits.
void expect_parity(const Tensor& logits_cpu, const Tensor& logits_gpu, const Tensor& targets,
                   int64_t ignore_index, Reduction reduction, const std::string& what) {
  const DType dt = logits_cpu.dtype();
  const double tol = dt == DType::F32 ? 1e-5 : dt == DType::BF16 ? 1e-2 : 1e-12;
  const DType loss_dt = dt == DType::BF16 ? DType::F32 : dt;
  const Tensor targets_gpu = targets.to(Device::cuda());
  CrossEntropyOutput c = cross_entropy_forward(logits_cpu, targets, ignore_index, reduction);
  CrossEntropyOutput g = cross_entropy_forward(logits_gpu, targets_gpu, ignore_index, reduction);
  ASSERT_TRUE(g.loss.device().is_cuda() && g.lse.device().is_cuda()) << what;
  EXPECT_EQ(g.loss.dtype(), loss_dt) << what;
  EXPECT_ALL_CLOSE(g.loss, c.loss, tol, tol) << what;
  EXPECT_ALL_CLOSE(g.lse, c.lse, tol, tol) << what;
  const Tensor grad = full({}, 0.75, loss_dt);
  Tensor dc = cross_entropy_backward(grad, logits_cpu, targets, c.lse, ignore_index, reduction);
  Tensor dg = cross_entropy_backward(grad.to(Device::cuda()), logits_gpu, targets_gpu, g.lse,
                                     ignore_index, reduction);
  EXPECT_EQ(dg.dtype(), dt) << what;
  EXPECT_ALL_CLOSE(dg, dc, tol, tol) << what;
  // Written over a copy of the logits: the same gradient bit for bit.
  const Tensor over = logits_gpu.contiguous().clone();
  const Tensor dover = cross_entropy_backward_(grad.to(Device::cuda()), over, targets_gpu, g.lse,
                                               ignore_index, reduction);
  EXPECT_EQ(dover.data_ptr(), over.data_ptr()) << what;
  EXPECT_ALL_CLOSE(dover, dg, 0, 0) << what;
}

std::string describe(const Tensor& logits, DType idt, Reduction reduction) {
  return "logits " + shape_str(logits.shape()) + " " + dtype_name(logits.dtype()) + ", targets " +
         dtype_name(idt) + (reduction == Reduction::Sum ? ", sum" : ", mean");
}

TEST(CrossEntropyCuda, MatchesCpuOnOddSizesWithIgnoredRows) {
  SKIP_WITHOUT_GPU();
  // Warp rows and block rows, one row and many, V of 1 (every loss 0); rows that split into
  // 16-byte vectors (V of 64, 2000, 50304: a multiple of 8) and rows that do not.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 1},     {5, 7},     {777, 7},   {777, 1}, {777, 50},
      {33, 2000}, {1, 50307}, {5, 50307}, {9, 64},  {65, 50304}};
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    for (const auto& [N, V] : shapes) {
      const Tensor logits = random_tensor({N, V}, seed++, dt);
      const Tensor logits_gpu = logits.to(Device::cuda());
      for (DType idt : {DType::I32, DType::I64}) {
        const Tensor targets = make_targets(N, V, seed++, idt, -100, 4);
        for (Reduction red : {Reduction::Mean, Reduction::Sum})
          expect_parity(logits, logits_gpu, targets, -100, red, describe(logits, idt, red));
      }
    }
  }
}

TEST(CrossEntropyCuda, StridedAndTransposedLogits) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    // Row stride V + 5 with unit inner stride: the kernels read it where it lies.
    const Tensor wide = random_tensor({777, 55}, 20, dt);
    const Tensor targets = make_targets(777, 50, 21, DType::I64, -100, 3);
    for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
      expect_parity(wide.narrow(1, 2, 50), wide.to(Device::cuda()).narrow(1, 2, 50), targets,
                    -100, red, "narrow " + describe(wide, DType::I64, red));
    }
    // Row stride 72 and V 64: vectors where the view starts on one (column 8), single
    // elements where it does not (column 1).
    const Tensor padded = random_tensor({129, 72}, 24, dt);
    const Tensor t64 = make_targets(129, 64, 25, DType::I64, -100, 5);
    for (int64_t start : {8, 1}) {
      expect_parity(padded.narrow(1, start, 64), padded.to(Device::cuda()).narrow(1, start, 64),
                    t64, -100, Reduction::Mean,
                    "narrow from column " + std::to_string(start) + " " +
                        describe(padded, DType::I64, Reduction::Mean));
    }
    // A transposed view has no unit stride along V: the op copies it first.
    const Tensor tall = random_tensor({1030, 6}, 22, dt);
    const Tensor t6 = make_targets(6, 1030, 23, DType::I32, -100, 0);
    for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
      expect_parity(tall.t(), tall.to(Device::cuda()).t(), t6, -100, red,
                    "transposed " + describe(tall, DType::I32, red));
    }
  }
}

TEST(CrossEntropyCuda, EveryRowIgnoredAndCustomIgnoreIndex) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor logits = random_tensor({9, 7}, 30, dt);
    const Tensor gpu = logits.to(Device::cuda());
    const Tensor all_ignored = full({9}, -100.0, DType::I64);
    const Tensor all_ignored_gpu = all_ignored.to(Device::cuda());
    for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
      expect_parity(logits, gpu, all_ignored, -100, red, "all ignored");
      CrossEntropyOutput out = cross_entropy_forward(gpu, all_ignored_gpu, -100, red);
      EXPECT_EQ(out.loss.item(), 0.0);
      Tensor d = cross_entropy_backward(ones({}, dt, Device::cuda()), gpu, all_ignored_gpu,
                                        out.lse, -100, red);
      EXPECT_ALL_CLOSE(d, zeros({9, 7}, dt), 0, 0);
    }
    // ignore_index 3 is also a class: rows targeting 3 drop out.
    const Tensor t = from_vector<int32_t>({3, 0, 6, 3, 1, 3, 2, 5, 4}, {9});
    for (Reduction red : {Reduction::Mean, Reduction::Sum})
      expect_parity(logits, gpu, t, 3, red, "ignore_index 3");
  }
}

TEST(CrossEntropyCuda, EmptyBatch) {
  SKIP_WITHOUT_GPU();
  const Tensor logits = zeros({0, 7}, DType::F32, Device::cuda());
  const Tensor targets = zeros({0}, DType::I64, Device::cuda());
  CrossEntropyOutput out = cross_entropy_forward(logits, targets);
  EXPECT_EQ(out.loss.item(), 0.0);
  EXPECT_EQ(cross_entropy_backward(ones({}, DType::F32, Device::cuda()), logits, targets, out.lse)
                .shape(),
            (Shape{0, 7}));
}

TEST(CrossEntropyCuda, RunsAreBitIdentical) {
  SKIP_WITHOUT_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor logits = random_tensor({777, 3001}, 40, dt, Device::cuda());
    const Tensor targets = make_targets(777, 3001, 41, DType::I64, -100, 5).to(Device::cuda());
    const Tensor grad = full({}, 1.0, dt, Device::cuda());
    CrossEntropyOutput a = cross_entropy_forward(logits, targets);
    CrossEntropyOutput b = cross_entropy_forward(logits, targets);
    EXPECT_EQ(a.loss.to_vector<double>(), b.loss.to_vector<double>());
    EXPECT_EQ(a.lse.to_vector<double>(), b.lse.to_vector<double>());
    CrossEntropyOutput sa = cross_entropy_forward(logits, targets, -100, Reduction::Sum);
    CrossEntropyOutput sb = cross_entropy_forward(logits, targets, -100, Reduction::Sum);
    EXPECT_EQ(sa.loss.to_vector<double>(), sb.loss.to_vector<double>());
    EXPECT_EQ(cross_entropy_backward(grad, logits, targets, a.lse).to_vector<double>(),
              cross_entropy_backward(grad, logits, targets, b.lse).to_vector<double>());
  }
}

// The op's backward takes the targets its forward checked and waits for nothing; the gradient
// is the CPU's.
TEST(CrossEntropyCuda, TheOpsBackwardWaitsForNothing) {
  SKIP_WITHOUT_GPU();
  const Tensor logits = random_tensor({65, 300}, 60);
  const Tensor targets = make_targets(65, 300, 61, DType::I64, -100, 7);
  const Variable cpu(logits, true), dev(logits.to(Device::cuda()), true);
  cross_entropy(cpu, targets).backward();
  const Variable loss = cross_entropy(dev, targets.to(Device::cuda()));
  const int64_t waits = cuda_host_waits();
  loss.backward();
  EXPECT_EQ(cuda_host_waits(), waits);
  EXPECT_ALL_CLOSE(dev.grad(), cpu.grad(), 1e-5, 1e-5);
}

TEST(CrossEntropyCuda, OutOfRangeTargetIsTheCpuError) {
  SKIP_WITHOUT_GPU();
  const Tensor logits = random_tensor({3, 7}, 50, DType::F32, Device::cuda());
  testing::expect_error(
      [&] { cross_entropy(logits, from_vector<int64_t>({1, 2, 7}, {3}).to(Device::cuda())); },
      "cross_entropy: target 7 of row 2 is out of range for 7 classes (and is not "
      "ignore_index -100)");
  testing::expect_error(
      [&] {
        cross_entropy_backward(ones({}, DType::F32, Device::cuda()), logits,
                               from_vector<int32_t>({1, -1, 0}, {3}).to(Device::cuda()),
                               zeros({3}, DType::F32, Device::cuda()));
      },
      "cross_entropy_backward: target -1 of row 1");
}

}  // namespace
}  // namespace moegrad
