// GEMM throughput of moegrad's matmul against the BLAS library underneath it, in the same
// run: "<device>/matmul/<shape>" calls moegrad::matmul (planning, output allocation, the
// library call); "<device>/blas/<shape>" calls cblas_sgemm (cuBLAS on a GPU) directly on the
// same inputs into a preallocated output. Both report GFLOP/s = 2 * batch * M * N * K / time;
// their ratio is what moegrad costs over BLAS. "<device>/experts/<dtype>/<pass>/{grouped,loop}/..."
// run the same projection of all 64 experts of an OLMoE-1B-7B layer as one grouped_matmul and as
// one matmul per expert, forward and both backward GEMMs, in f32 and bf16; on a GPU also those of
// a medium.cfg layer in bf16 with balanced and with skewed routing ("64xskewed": one expert gets
// every token, as in the random-init model's profile), whose ratio is what uneven experts cost.
// ".../own/..." (GPU, bf16) are gathered_grouped_matmul's and gathered_grouped_matmul_tn's kernels
// of moegrad's own, the groups read on the device, against cuBLAS's grouped call beside them (the
// own weight gradient writes gate and up as one [out, in] result an expert).
// The rest is f32.
#include <cblas.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "core/ops/matmul.h"
#include "core/random.h"

#ifdef MOEGRAD_WITH_CUDA
#include <cublas_v2.h>

#include "core/cuda/cublas.h"
#endif

namespace moegrad::bench {
namespace {

// out [batch, M, N] = op(a) op(b) with a [batch, M, K] ([batch, K, M] when ta), b likewise.
struct Gemm {
  std::string name;
  int64_t batch, m, n, k;
  bool ta, tb;
};

// Square GEMMs, then the GEMMs of one OLMoE-1B-7B layer (hidden 2048, 64 experts of width 1024,
// top-8, 16 heads of 128) over `tokens` tokens: the projections and their two backward GEMMs,
// the router, one expert (tokens * 8 / 64 rows), attention over sequences of `seq`, and the
// LM head (vocabulary 50304).
std::vector<Gemm> gemms(Device device) {
  bool cpu = device.is_cpu();
  int64_t tokens = cpu ? 512 : 8192, seq = cpu ? 256 : 2048, per_expert = tokens * 8 / 64;
  std::vector<Gemm> g;
  for (int64_t n : cpu ? std::vector<int64_t>{256, 512, 1024} : std::vector<int64_t>{1024, 4096, 8192})
    g.push_back({"square", 1, n, n, n, false, false});
  g.push_back({"proj_fwd", 1, tokens, 2048, 2048, false, true});    // x W^T
  g.push_back({"proj_dgrad", 1, tokens, 2048, 2048, false, false});  // dy W
  g.push_back({"proj_wgrad", 1, 2048, 2048, tokens, true, false});   // dy^T x
  g.push_back({"router", 1, tokens, 64, 2048, false, true});
  g.push_back({"expert_up", 1, per_expert, 1024, 2048, false, true});
  g.push_back({"expert_down", 1, per_expert, 2048, 1024, false, true});
  g.push_back({"attn_scores", tokens / seq * 16, seq, seq, 128, false, true});  // q k^T
  g.push_back({"attn_values", tokens / seq * 16, seq, 128, seq, false, false});  // p v
  g.push_back({"lm_head", 1, cpu ? 64 : tokens, 50304, 2048, false, true});
  return g;
}

std::string label(const Gemm& g) {
  std::string s = g.name + "/";
  if (g.batch > 1) s += std::to_string(g.batch) + "x";
  s += std::to_string(g.m) + "x" + std::to_string(g.n) + "x" + std::to_string(g.k);
  if (g.ta) s += "/ta";
  if (g.tb) s += "/tb";
  return s;
}

Shape operand(int64_t batch, bool trans, int64_t rows, int64_t cols) {
  Shape s = trans ? Shape{cols, rows} : Shape{rows, cols};
  if (batch > 1) s.insert(s.begin(), batch);
  return s;
}

struct Operands {
  Tensor a, b, out;
};

// The output is preallocated only for the direct BLAS call; matmul allocates its own.
Operands make_operands(const Gemm& g, Device device, bool with_out) {
  Generator gen(0);
  return {randn(operand(g.batch, g.ta, g.m, g.k), gen, DType::F32, device),
          randn(operand(g.batch, g.tb, g.k, g.n), gen, DType::F32, device),
          with_out ? empty({g.batch, g.m, g.n}, DType::F32, device) : Tensor()};
}

// The library call matmul makes for contiguous operands, made directly.
void blas_call(const Gemm& g, const Operands& o) {
  const float* a = o.a.data<float>();
  const float* b = o.b.data<float>();
  float* c = o.out.data<float>();
  int lda = int(g.ta ? g.m : g.k), ldb = int(g.tb ? g.k : g.n);
  if (o.out.device().is_cpu()) {
    for (int64_t i = 0; i < g.batch; ++i)
      cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans,
                  int(g.m), int(g.n), int(g.k), 1.0f, a + i * g.m * g.k, lda, b + i * g.k * g.n, ldb,
                  0.0f, c + i * g.m * g.n, int(g.n));
    return;
  }
#ifdef MOEGRAD_WITH_CUDA
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  const float one = 1.0f, zero = 0.0f;
  MOEGRAD_CUBLAS_CHECK(cublasSgemmStridedBatched(
      cuda::cublas_handle(o.out.device().index), g.tb ? CUBLAS_OP_T : CUBLAS_OP_N,
      g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(g.n), int(g.m), int(g.k), &one, b, ldb, g.k * g.n, a,
      lda, g.m * g.k, &zero, c, int(g.n), g.m * g.n, int(g.batch)));
#endif
}

void register_gemm(Device device, const Gemm& g, bool through_blas) {
  std::string name = std::string(through_blas ? "blas/" : "matmul/") + label(g);
  register_on(device, name, [=](benchmark::State& state) {
    Operands o = make_operands(g, device, through_blas);
    time_iterations(state, device, [&] {
      if (through_blas) {
        blas_call(g, o);
      } else {
        benchmark::DoNotOptimize(matmul(o.a, o.b, g.ta, g.tb));
      }
    });
    state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(g.batch * g.m * g.n * g.k),
                                                   benchmark::Counter::kIsIterationInvariantRate);
  })->Unit(benchmark::kMillisecond);
}

// The three GEMMs of one projection of every expert of a layer over its share of the tokens
// (top-8 of 64), x [8 * tokens, in] against 64 weights [out, in]: the forward x W^T, the input
// gradient dy W and the weight gradient dy^T x, as one grouped call and as one matmul per
// expert. With `blocks` 2, out is gate and up joined, as the experts run them: the weight
// gradient is then two [out / 2, in] results an expert (grouped_matmul_tn's column blocks).
enum class ExpertPass { Forward, Dgrad, Wgrad };
// cuBLAS's grouped call (sizes on the host), a matmul per expert, or moegrad's own kernel.
enum class ExpertRun { Grouped, Loop, Own };

// Rows per expert: 8 * tokens / 64 each, or skewed: weights 1 / (e + 1) (Zipf), each capped at
// `tokens` (a token picks an expert once), what the caps cut spread over the smallest.
std::vector<int64_t> expert_rows(int64_t tokens, int64_t experts, bool skewed) {
  const int64_t total = 8 * tokens;
  if (!skewed) return std::vector<int64_t>(size_t(experts), total / experts);
  double harmonic = 0;
  for (int64_t e = 0; e < experts; ++e) harmonic += 1.0 / double(e + 1);
  std::vector<int64_t> rows(static_cast<size_t>(experts));
  int64_t left = total;
  for (int64_t e = 0; e < experts; ++e) {
    rows[size_t(e)] = std::min(tokens, int64_t(double(total) / (harmonic * double(e + 1))));
    left -= rows[size_t(e)];
  }
  for (int64_t e = experts - 1; left > 0; e = (e + experts - 1) % experts) {
    if (rows[size_t(e)] == tokens) continue;
    ++rows[size_t(e)];
    --left;
  }
  return rows;
}

void register_experts(Device device, DType dtype, ExpertPass pass, int64_t out, int64_t in,
                      ExpertRun run, bool skewed = false, int64_t blocks = 1) {
  const int64_t experts = 64, tokens = device.is_cpu() ? 512 : 8192, rows = tokens * 8 / experts;
  const char* pass_name = pass == ExpertPass::Forward ? "fwd/"
                          : pass == ExpertPass::Dgrad ? "dgrad/"
                                                      : "wgrad/";
  const char* run_name = run == ExpertRun::Grouped ? "grouped/"
                         : run == ExpertRun::Loop  ? "loop/"
                                                   : "own/";
  std::string name =
      std::string("experts/") + dtype_name(dtype) + "/" + pass_name + run_name +
      std::to_string(experts) + "x" + (skewed ? std::string("skewed") : std::to_string(rows)) +
      "x" + std::to_string(out) + "x" + std::to_string(in) + (blocks > 1 ? "/gate_up" : "");
  register_on(device, name, [=](benchmark::State& state) {
    // Made once per shape and dtype (Google Benchmark calls a benchmark several times, and
    // 64 experts' operands take seconds to draw); the last shape's are freed for the next.
    static std::tuple<Device, DType, int64_t, int64_t> made{};
    static Tensor x, dy, w_stack;
    static std::vector<Tensor> w;
    if (made != std::tuple{device, dtype, out, in} || !x.defined()) {
      x = dy = w_stack = Tensor();
      w.clear();
      Generator gen(0);
      x = randn({experts * rows, in}, gen, dtype, device);
      dy = randn({experts * rows, out}, gen, dtype, device);
      // The experts' weights as one stack [64, out, in], each expert's a view of it.
      w_stack = randn({experts, out, in}, gen, dtype, device);
      for (int64_t e = 0; e < experts; ++e) w.push_back(w_stack.select(0, e));
      made = {device, dtype, out, in};
    }
    const std::vector<int64_t> counts = expert_rows(tokens, experts, skewed);
    const std::vector<bool> want(size_t(blocks * experts), true);
    const int64_t width = out / blocks;
    const bool fwd = pass == ExpertPass::Forward, wgrad = pass == ExpertPass::Wgrad;
    // The own kernels read the groups' starts on the device.
    Tensor start;
    if (run == ExpertRun::Own) {
      std::vector<int64_t> starts(counts.size() + 1, 0);
      for (size_t e = 0; e < counts.size(); ++e) starts[e + 1] = starts[e] + counts[e];
      start = from_vector(starts, {experts + 1}).to(device);
    }
    time_iterations(state, device, [&] {
      switch (run) {
        case ExpertRun::Grouped:
          if (wgrad)
            benchmark::DoNotOptimize(grouped_matmul_tn(dy, x, counts, want));
          else
            benchmark::DoNotOptimize(grouped_matmul(fwd ? x : dy, w, counts, fwd));
          break;
        case ExpertRun::Own:
          if (wgrad)
            benchmark::DoNotOptimize(gathered_grouped_matmul_tn(dy, Tensor(), x, Tensor(), start));
          else
            benchmark::DoNotOptimize(
                gathered_grouped_matmul(fwd ? x : dy, Tensor(), w_stack, start, fwd));
          break;
        case ExpertRun::Loop:
          for (int64_t e = 0, first = 0; e < experts; first += counts[size_t(e)], ++e) {
            const int64_t n = counts[size_t(e)];
            if (n == 0) continue;
            const Tensor xe = x.narrow(0, first, n), dye = dy.narrow(0, first, n);
            const Tensor& we = w[size_t(e)];
            if (wgrad)
              for (int64_t b = 0; b < blocks; ++b)
                benchmark::DoNotOptimize(matmul(dye.narrow(1, b * width, width), xe, true, false));
            else
              benchmark::DoNotOptimize(fwd ? matmul(xe, we, false, true)
                                           : matmul(dye, we, false, false));
          }
          break;
      }
    });
    state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(experts * rows * out * in),
                                                   benchmark::Counter::kIsIterationInvariantRate);
  })->Unit(benchmark::kMillisecond);
}

// Grouped and loop always; moegrad's own kernels where they run: a GPU, bf16.
std::vector<ExpertRun> expert_runs(Device device, DType dtype) {
  std::vector<ExpertRun> runs = {ExpertRun::Grouped, ExpertRun::Loop};
  if (device.is_cuda() && dtype == DType::BF16) runs.push_back(ExpertRun::Own);
  return runs;
}

}  // namespace
}  // namespace moegrad::bench

int main(int argc, char** argv) {
  using namespace moegrad;
  return bench::run_benchmarks(argc, argv, [](Device device) {
    for (const bench::Gemm& g : bench::gemms(device)) {
      bench::register_gemm(device, g, false);
      bench::register_gemm(device, g, true);
    }
    // gate or up (1024 x 2048), then down; grouped beside loop, in the order that reuses
    // each shape's operands.
    for (DType dtype : {DType::F32, DType::BF16})
      for (auto [out, in] : {std::pair<int64_t, int64_t>{1024, 2048}, {2048, 1024}})
        for (bench::ExpertPass pass :
             {bench::ExpertPass::Forward, bench::ExpertPass::Dgrad, bench::ExpertPass::Wgrad})
          for (bench::ExpertRun run : bench::expert_runs(device, dtype))
            bench::register_experts(device, dtype, pass, out, in, run);
    // A medium.cfg layer (hidden 1024, experts of width 512: gate and up joined, then down),
    // balanced and skewed.
    if (device.is_cuda())
      for (auto [out, in, blocks] : {std::tuple<int64_t, int64_t, int64_t>{1024, 1024, 2},
                                     {1024, 512, 1}})
        for (bench::ExpertPass pass :
             {bench::ExpertPass::Forward, bench::ExpertPass::Dgrad, bench::ExpertPass::Wgrad})
          for (bool skewed : {false, true})
            for (bench::ExpertRun run : bench::expert_runs(device, DType::BF16))
              bench::register_experts(device, DType::BF16, pass, out, in, run, skewed, blocks);
  });
}
