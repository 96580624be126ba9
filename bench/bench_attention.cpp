// The fused causal attention kernels against attention built from library GEMMs, in the same
// run: "<device>/attention/fwd|bwd/<shape>" runs attention_forward / attention_backward (no
// [T, T] matrix); "<device>/unfused/fwd/<shape>" computes the same forward as torch eager
// does: q k^T by BLAS/cuBLAS, the causal mask, softmax, p v, with the [T, T] scores in memory.
// GFLOP/s counts the work causal attention needs: 4 B H T^2 D / 2 for the forward (two
// GEMMs over half the square), 2.5 times that for the backward. f32, and on the GPU also bf16
// ("<device>/attention/fwd/bf16/<shape>": the tensor-core kernels, against cuBLAS's bf16 GEMMs).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/ops/attention.h"
#include "core/ops/binary.h"
#include "core/ops/matmul.h"
#include "core/ops/softmax.h"
#include "core/random.h"

namespace moegrad::bench {
namespace {

struct Shape4 {
  int64_t B, H, T, D;
};

std::string label(const Shape4& s, DType dtype) {
  return std::string(dtype == DType::BF16 ? "bf16/" : "") + "B" + std::to_string(s.B) + "_H" +
         std::to_string(s.H) + "_T" + std::to_string(s.T) + "_D" + std::to_string(s.D);
}

// The GPU shapes are experiments/bench/medium.cfg's (4 x 2048 tokens, 16 heads of 64) and
// OLMoE-1B-7B's heads of 128; the CPU's are a demo model's.
std::vector<Shape4> shapes(Device device) {
  if (device.is_cpu()) return {{1, 8, 256, 64}, {1, 8, 512, 64}};
  return {{4, 16, 2048, 64}, {2, 16, 2048, 128}, {8, 16, 512, 64}};
}

double forward_flops(const Shape4& s) {
  return 4.0 * double(s.B * s.H) * double(s.T) * double(s.T) * double(s.D) / 2.0;
}

struct Inputs {
  Tensor q, k, v, grad;
};

Inputs make_inputs(const Shape4& s, DType dtype, Device device) {
  Generator gen(0);
  auto r = [&] { return randn({s.B, s.H, s.T, s.D}, gen, DType::F32, device).to(dtype); };
  Inputs in{r(), r(), r(), r()};
  return in;
}

void register_fused(Device device, const Shape4& s, DType dtype, bool backward) {
  const std::string name =
      std::string("attention/") + (backward ? "bwd/" : "fwd/") + label(s, dtype);
  register_on(device, name, [=](benchmark::State& state) {
    const Inputs in = make_inputs(s, dtype, device);
    const AttentionOutput fwd = attention_forward(in.q, in.k, in.v, true);
    time_iterations(state, device, [&] {
      if (backward) {
        benchmark::DoNotOptimize(
            attention_backward(in.grad, in.q, in.k, in.v, fwd.out, fwd.lse, true));
      } else {
        benchmark::DoNotOptimize(attention_forward(in.q, in.k, in.v, true));
      }
    });
    state.counters["GFLOP/s"] =
        benchmark::Counter(1e-9 * forward_flops(s) * (backward ? 2.5 : 1.0),
                           benchmark::Counter::kIsIterationInvariantRate);
  })->Unit(benchmark::kMillisecond);
}

void register_unfused(Device device, const Shape4& s, DType dtype) {
  register_on(device, "unfused/fwd/" + label(s, dtype), [=](benchmark::State& state) {
    const Inputs in = make_inputs(s, dtype, device);
    const Shape flat{s.B * s.H, s.T, s.D};
    // q is taken as already scaled: one multiply less than the real thing, in its favour.
    const Tensor q = in.q.reshape(flat), k = in.k.reshape(flat), v = in.v.reshape(flat);
    std::vector<float> mask_values(size_t(s.T * s.T), 0.0f);
    for (int64_t i = 0; i < s.T; ++i)
      for (int64_t j = i + 1; j < s.T; ++j)
        mask_values[size_t(i * s.T + j)] = -std::numeric_limits<float>::infinity();
    const Tensor mask = from_vector(mask_values, {s.T, s.T}).to(dtype).to(device);
    time_iterations(state, device, [&] {
      const Tensor p = softmax(matmul(q, k, false, true) + mask, -1);
      benchmark::DoNotOptimize(matmul(p, v));
    });
    state.counters["GFLOP/s"] = benchmark::Counter(
        1e-9 * forward_flops(s), benchmark::Counter::kIsIterationInvariantRate);
  })->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace moegrad::bench

int main(int argc, char** argv) {
  using namespace moegrad;
  return bench::run_benchmarks(argc, argv, [](Device device) {
    std::vector<DType> dtypes{DType::F32};
    if (device.is_cuda()) dtypes.push_back(DType::BF16);
    for (DType dtype : dtypes)
      for (const bench::Shape4& s : bench::shapes(device)) {
        bench::register_fused(device, s, dtype, false);
        bench::register_fused(device, s, dtype, true);
        bench::register_unfused(device, s, dtype);
      }
  });
}
