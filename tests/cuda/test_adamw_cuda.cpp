#include <string>
#include <vector>

#include "core/ops/adamw.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

double tol_of(DType dt) { return dt == DType::F32 ? 1e-5 : 1e-12; }

// Same shape, dtype and bits.
::testing::AssertionResult bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << "shape or dtype differs";
  if (a.to_vector<double>() != b.to_vector<double>())
    return ::testing::AssertionFailure() << "values differ";
  return ::testing::AssertionSuccess();
}

TEST(AdamWCuda, MatchesCpuOverSeveralSteps) {
  SKIP_WITHOUT_GPU();
  const AdamWConfig c{0.01, 0.9, 0.95, 1e-8, 0.1};
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Shape& shape : {Shape{1}, Shape{7, 13}, Shape{100003}}) {
      Tensor p = random_tensor(shape, seed++, dt);
      Tensor m = zeros(shape, dt), v = zeros(shape, dt);
      Tensor gp = p.to(Device::cuda()), gm = m.to(Device::cuda()), gv = v.to(Device::cuda());
      for (int64_t t = 1; t <= 4; ++t) {
        Tensor g = random_tensor(shape, seed++, dt);
        adamw_step(p, g, m, v, c, t);
        adamw_step(gp, g.to(Device::cuda()), gm, gv, c, t);
      }
      const std::string what = shape_str(shape) + " " + dtype_name(dt);
      EXPECT_ALL_CLOSE(gp, p, tol_of(dt), tol_of(dt)) << what;
      EXPECT_ALL_CLOSE(gm, m, tol_of(dt), tol_of(dt)) << what;
      EXPECT_ALL_CLOSE(gv, v, tol_of(dt), tol_of(dt)) << what;
    }
  }
}

TEST(AdamWCuda, UpdatesAStridedExpertSliceInPlace) {
  SKIP_WITHOUT_GPU();
  // Expert 1 of a stacked [E, I, H] weight, seen transposed; its neighbours must not move.
  const AdamWConfig c{0.1, 0.9, 0.999, 1e-8, 0.01};
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor stacked = random_tensor({3, 5, 7}, 10, dt);
    Tensor gstacked = stacked.to(Device::cuda());
    Tensor gm_all = zeros({3, 5, 7}, dt, Device::cuda());
    Tensor gv_all = zeros({3, 5, 7}, dt, Device::cuda());
    Tensor m_all = zeros({3, 5, 7}, dt), v_all = zeros({3, 5, 7}, dt);
    for (int64_t t = 1; t <= 3; ++t) {
      Tensor g = random_tensor({7, 5}, 10 + t, dt);
      adamw_step(stacked.select(0, 1).t(), g, m_all.select(0, 1).t(), v_all.select(0, 1).t(), c,
                 t);
      adamw_step(gstacked.select(0, 1).t(), g.to(Device::cuda()), gm_all.select(0, 1).t(),
                 gv_all.select(0, 1).t(), c, t);
    }
    EXPECT_ALL_CLOSE(gstacked, stacked, tol_of(dt), tol_of(dt));
    EXPECT_ALL_CLOSE(gm_all, m_all, tol_of(dt), tol_of(dt));
    EXPECT_ALL_CLOSE(gv_all, v_all, tol_of(dt), tol_of(dt));
    const Tensor before = random_tensor({3, 5, 7}, 10, dt);
    for (int64_t e : {0, 2}) {
      EXPECT_TRUE(bit_equal(gstacked.select(0, e), before.select(0, e))) << "expert " << e;
      EXPECT_TRUE(bit_equal(gm_all.select(0, e), zeros({5, 7}, dt))) << "expert " << e;
    }
  }
}

// Tensors of a multi-tensor step: odd sizes around the kernel's chunk (4096 elements), an empty
// one, a row run of a stacked weight (contiguous at an offset), a non-contiguous slice (the
// per-tensor fallback), and an f64 one among f32s (a second launch).
struct Params {
  Tensor stacked;  // [4, 6, 5]; experts 1..2 and column slice [:, :, 1:4] of expert 3 are trained
  std::vector<Tensor> p, m, v;

  explicit Params(Device device) {
    const std::vector<std::pair<Shape, DType>> dense = {
        {{1}, DType::F32},       {{4095}, DType::F32}, {{4096}, DType::F32},
        {{4097}, DType::F32},    {{0, 3}, DType::F32}, {{3, 3333}, DType::F32},
        {{17, 9}, DType::F64}};
    uint64_t seed = 100;
    for (const auto& [shape, dt] : dense) add(random_tensor(shape, seed++, dt, device));
    stacked = random_tensor({4, 6, 5}, seed++, DType::F32, device);
    add(stacked.narrow(0, 1, 2));
    add(stacked.select(0, 3).narrow(1, 1, 3));
  }
  void add(const Tensor& param) {
    p.push_back(param);
    m.push_back(zeros(param.shape(), param.dtype(), param.device()));
    v.push_back(zeros(param.shape(), param.dtype(), param.device()));
  }
  // Per-tensor lr, decay and step, as train::AdamW's groups and skipped steps give them.
  AdamWTensors entry(size_t i, const Tensor& grad, int64_t k) const {
    return {p[i], grad, m[i], v[i], 1e-2 * double(i + 1), i % 2 ? 0.1 : 0.0, int64_t(i % 3) + k};
  }
};

std::vector<Tensor> grads_for(const Params& ps, int64_t k, Device device) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < ps.p.size(); ++i)
    out.push_back(random_tensor(ps.p[i].shape(), 1000 * uint64_t(k) + i, ps.p[i].dtype(), device));
  return out;
}

TEST(AdamWCuda, MultiTensorLaunchEqualsPerTensorLaunchesBitForBit) {
  SKIP_WITHOUT_GPU();
  Params multi(Device::cuda()), single(Device::cuda()), cpu(Device::cpu());
  const Tensor before = multi.stacked.clone();
  // An entry without a gradient (an expert no token reached) is skipped, untouched.
  const Tensor idle = random_tensor({6}, 99, DType::F32, Device::cuda()),
               idle_before = idle.clone();
  const AdamWTensors skipped{idle, Tensor(), idle.clone(), idle.clone()};
  for (int64_t k = 1; k <= 3; ++k) {
    const std::vector<Tensor> g = grads_for(multi, k, Device::cuda());
    std::vector<AdamWTensors> entries{skipped}, cpu_entries;
    const std::vector<Tensor> cg = grads_for(cpu, k, Device::cpu());
    for (size_t i = 0; i < multi.p.size(); ++i) {
      entries.push_back(multi.entry(i, g[i], k));
      cpu_entries.push_back(cpu.entry(i, cg[i], k));
      const AdamWTensors e = single.entry(i, g[i], k);
      adamw_step(e.param, e.grad, e.exp_avg, e.exp_avg_sq, e.lr, 0.9, 0.95, 1e-8, e.weight_decay,
                 e.step);
    }
    adamw_step_multi(entries, 0.9, 0.95, 1e-8);
    adamw_step_multi(cpu_entries, 0.9, 0.95, 1e-8);
  }
  for (size_t i = 0; i < multi.p.size(); ++i) {
    const std::string what = "tensor " + std::to_string(i) + " " + shape_str(multi.p[i].shape());
    EXPECT_TRUE(bit_equal(multi.p[i], single.p[i])) << what;
    EXPECT_TRUE(bit_equal(multi.m[i], single.m[i])) << what;
    EXPECT_TRUE(bit_equal(multi.v[i], single.v[i])) << what;
    // The kernels round as the CPU loop does (no fma), so the backends agree bit for bit.
    EXPECT_TRUE(bit_equal(multi.p[i], cpu.p[i])) << what;
    EXPECT_TRUE(bit_equal(multi.m[i], cpu.m[i])) << what;
    EXPECT_TRUE(bit_equal(multi.v[i], cpu.v[i])) << what;
  }
  // Expert 0, and expert 3 outside its column slice: untouched.
  EXPECT_TRUE(bit_equal(multi.stacked.select(0, 0), before.select(0, 0)));
  EXPECT_TRUE(bit_equal(multi.stacked.select(0, 3).narrow(1, 0, 1),
                        before.select(0, 3).narrow(1, 0, 1)));
  EXPECT_TRUE(bit_equal(multi.stacked.select(0, 3).narrow(1, 4, 1),
                        before.select(0, 3).narrow(1, 4, 1)));
  EXPECT_FALSE(bit_equal(multi.stacked.select(0, 1), before.select(0, 1)));
  EXPECT_FALSE(bit_equal(multi.stacked.select(0, 2), before.select(0, 2)));
  EXPECT_TRUE(bit_equal(idle, idle_before));
}

// A gradient scale (clipping's coefficient) read by the kernels as by the CPU loop, in every
// launch: the multi-tensor ones (f32, f64) and the per-tensor fallback (a non-contiguous slice).
TEST(AdamWCuda, GradScaleMatchesTheCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  Params gpu(Device::cuda()), cpu(Device::cpu());
  for (int64_t k = 1; k <= 2; ++k) {
    const std::vector<Tensor> g = grads_for(gpu, k, Device::cuda());
    const std::vector<Tensor> cg = grads_for(cpu, k, Device::cpu());
    std::vector<AdamWTensors> entries, cpu_entries;
    for (size_t i = 0; i < gpu.p.size(); ++i) {
      entries.push_back(gpu.entry(i, g[i], k));
      cpu_entries.push_back(cpu.entry(i, cg[i], k));
    }
    adamw_step_multi(entries, 0.9, 0.95, 1e-8, 0.37);
    adamw_step_multi(cpu_entries, 0.9, 0.95, 1e-8, 0.37);
  }
  for (size_t i = 0; i < gpu.p.size(); ++i) {
    const std::string what = "tensor " + std::to_string(i) + " " + shape_str(gpu.p[i].shape());
    EXPECT_TRUE(bit_equal(gpu.p[i], cpu.p[i])) << what;
    EXPECT_TRUE(bit_equal(gpu.m[i], cpu.m[i])) << what;
    EXPECT_TRUE(bit_equal(gpu.v[i], cpu.v[i])) << what;
  }
}

TEST(AdamWCuda, Bf16MastersMatchTheCpuBitForBit) {
  SKIP_WITHOUT_GPU();
  // A contiguous master (the multi-tensor launch) and a transposed expert slice (the per-tensor
  // fallback), each rounding into its bf16 model parameter; an f32 tensor beside them.
  struct Run {
    Tensor stacked, master_t, m_t, v_t, flat, master_f, m_f, v_f;
    explicit Run(Device d)
        : stacked(random_tensor({3, 5, 4}, 90, DType::BF16, d)),
          master_t(stacked.select(0, 1).t().to(DType::F32)),
          m_t(zeros({4, 5}, DType::F32, d)),
          v_t(zeros({4, 5}, DType::F32, d)),
          flat(random_tensor({1000}, 91, DType::BF16, d)),
          master_f(flat.to(DType::F32)),
          m_f(zeros({1000}, DType::F32, d)),
          v_f(zeros({1000}, DType::F32, d)) {}
    void step(int64_t k) {
      const Device d = stacked.device();
      const AdamWTensors t{master_t, random_tensor({4, 5}, 100 + k, DType::BF16, d), m_t, v_t,
                           1e-3, 1e-2, k, stacked.select(0, 1).t()};
      const AdamWTensors f{master_f, random_tensor({1000}, 200 + k, DType::BF16, d), m_f, v_f,
                           1e-3, 1e-2, k, flat};
      adamw_step_multi({t, f}, 0.9, 0.95, 1e-8);
    }
  };
  Run gpu(Device::cuda()), cpu(Device::cpu());
  for (int64_t k = 1; k <= 3; ++k) {
    gpu.step(k);
    cpu.step(k);
  }
  EXPECT_TRUE(bit_equal(gpu.master_t.to(Device::cpu()), cpu.master_t));
  EXPECT_TRUE(bit_equal(gpu.master_f.to(Device::cpu()), cpu.master_f));
  EXPECT_TRUE(bit_equal(gpu.stacked.to(Device::cpu()), cpu.stacked));
  EXPECT_TRUE(bit_equal(gpu.flat.to(Device::cpu()), cpu.flat));
  EXPECT_TRUE(bit_equal(cpu.flat, cpu.master_f.to(DType::BF16)));
}

}  // namespace
}  // namespace moegrad
