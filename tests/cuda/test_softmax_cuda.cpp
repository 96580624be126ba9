#include "autograd/ops/binary.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/softmax.h"
#include "core/ops/softmax.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(SoftmaxCuda, ForwardAndBackwardMatchCpuOnEveryPath) {
  SKIP_WITHOUT_GPU();
  // bf16: f32 arithmetic on both backends, outputs rounded once: within a bf16 step or two.
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    double tol = dt == DType::F32 ? 1e-5 : dt == DType::BF16 ? 1e-2 : 1e-12;
    auto rt = [dt](const Shape& s, uint64_t seed) { return testing::random_tensor(s, seed, dt); };
    // short rows, warp rows, block rows, a middle dim, a strided input; rows in 16-byte vectors
    // (64 and 4096 columns) and a contiguous view that starts mid-vector (one element a thread),
    // taken on each device since Tensor::to copies into a new tensor
    struct Case {
      Tensor x, gx;
      int64_t dim;
    };
    auto both = [](const Tensor& x, int64_t dim) { return Case{x, x.to(Device::cuda()), dim}; };
    auto mid_vector = [](const Tensor& flat) { return flat.narrow(0, 1, 192).view({3, 64}); };
    const Tensor flat = rt({193}, 12);
    const std::vector<Case> cases = {
        both(rt({37, 5}, 1), 1),
        both(rt({37, 300}, 2), -1),
        both(rt({7, 3001}, 3), 1),
        both(rt({4, 50, 6}, 4), 1),
        both(rt({45, 37}, 5).t(), 1),
        both(rt({45, 37}, 6), 0),
        both(rt({37, 64}, 10), 1),
        both(rt({9, 4096}, 11), 1),
        Case{mid_vector(flat), mid_vector(flat.to(Device::cuda())), 1},
    };
    for (const auto& [x, gx, dim] : cases) {
      Tensor grad = rt(x.shape(), 7);
      for (bool log : {false, true}) {
        Tensor cpu = log ? log_softmax(x, dim) : softmax(x, dim);
        Tensor gpu = log ? log_softmax(gx, dim) : softmax(gx, dim);
        EXPECT_EQ(gpu.dtype(), dt);
        EXPECT_ALL_CLOSE(gpu, cpu, tol, tol)
            << shape_str(x.shape()) << " dim " << dim << " log " << log;
        Tensor cb = log ? log_softmax_backward(grad, cpu, dim) : softmax_backward(grad, cpu, dim);
        Tensor gb = log ? log_softmax_backward(grad.to(Device::cuda()), cpu.to(Device::cuda()), dim)
                        : softmax_backward(grad.to(Device::cuda()), cpu.to(Device::cuda()), dim);
        EXPECT_ALL_CLOSE(gb, cb, tol, tol)
            << shape_str(x.shape()) << " dim " << dim << " log " << log;
      }
    }
  }
}

TEST(SoftmaxCuda, GradientsMatchCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = testing::random_tensor({5, 33}, 8);
  Tensor w = testing::random_tensor({5, 33}, 9);
  for (bool log : {false, true}) {
    Variable c(x, true), g(x.to(Device::cuda()), true);
    auto loss = [&](const Variable& v, const Tensor& wt) {
      Variable y = log ? log_softmax(v, 1) : softmax(v, 0);
      return sum(mul(y, Variable(wt)));
    };
    loss(c, w).backward();
    loss(g, w.to(Device::cuda())).backward();
    EXPECT_ALL_CLOSE(g.grad(), c.grad(), 1e-12, 1e-12);
  }
}

}  // namespace
}  // namespace moegrad
