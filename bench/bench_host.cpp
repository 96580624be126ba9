// What a training step costs the host on a GPU, where a step whose host cannot enqueue work as
// fast as the device runs it is host-bound (bench/README.md: medium.cfg in bf16). Host wall
// clock throughout, per call:
//   "<device>/host/op/add/<n>"           a 1000-op chain of moegrad::add on [n] tensors, the
//                                        device synchronised at the end: allocation, dispatch,
//                                        launch; on a GPU at least the kernels' own time
//   "<device>/host/autograd/mul/<n>"     the same chain of autograd mul, then its backward:
//                                        the graph's bookkeeping on top (per forward op)
//   "cuda/host/busy/<call>"              the host time of one call while a 4096^3 f32 GEMM
//                                        (about 2.7 ms on an H100) is queued: near zero if the
//                                        call only enqueues, near the GEMM's time if it waits for
//                                        the stream. Calls: uploads of 1 KiB-512 KiB from host
//                                        memory (the experts' routing tables, the grouped GEMMs'
//                                        address tables), a bf16 matmul, and the experts' three
//                                        bf16 grouped GEMMs with equal and with varied row
//                                        counts (cuBLAS takes their sizes from the host)
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "core/ops/binary.h"
#include "core/ops/matmul.h"
#include "core/random.h"

namespace moegrad::bench {
namespace {

constexpr int kChain = 1000;

std::string name_on(Device device, const std::string& what) {
  return (device.is_cpu() ? "cpu/" : "cuda/") + what;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Times `body` by the host's clock, the device synchronised after each call; reports the time
// per op of a body of `ops` ops.
void time_on_host(benchmark::State& state, Device device, int ops,
                  const std::function<void()>& body) {
  body();  // warm: kernels loaded, the allocator's blocks cached
  synchronize(device);
  double total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    synchronize(device);
    const double seconds = seconds_since(t0);
    state.SetIterationTime(seconds);
    total += seconds;
  }
  state.counters["us_per_op"] = 1e6 * total / double(state.iterations()) / double(ops);
}

void register_op_chain(Device device, int64_t n) {
  benchmark::RegisterBenchmark(
      name_on(device, "host/op/add/" + std::to_string(n)).c_str(),
      [=](benchmark::State& state) {
        Generator gen(0);
        const Tensor x = randn({n}, gen, DType::F32, device);
        time_on_host(state, device, kChain, [&] {
          Tensor y = x;
          for (int i = 0; i < kChain; ++i) y = add(y, x);
          benchmark::DoNotOptimize(y);
        });
      })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

void register_autograd_chain(Device device, int64_t n) {
  benchmark::RegisterBenchmark(
      name_on(device, "host/autograd/mul/" + std::to_string(n)).c_str(),
      [=](benchmark::State& state) {
        Generator gen(0);
        const Variable w(randn({n}, gen, DType::F32, device), true);
        const Tensor x = randn({n}, gen, DType::F32, device);
        time_on_host(state, device, kChain, [&] {
          Variable y(x);
          for (int i = 0; i < kChain; ++i) y = mul(y, w);
          sum(y).backward();
          w.impl()->grad = Tensor();
        });
      })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

// The host time of `call` made while a 4096^3 f32 GEMM (about 2.7 ms on an H100) is queued:
// near zero when the call only enqueues work, near the GEMM's time when it waits for the stream.
// A fixed count of iterations: Google Benchmark would run a manually timed benchmark until the
// host times add up to its minimum time, thousands of GEMMs for a call of a few microseconds.
void register_while_busy(Device device, const std::string& what,
                         const std::function<std::function<void()>()>& make_call) {
  benchmark::RegisterBenchmark(
      name_on(device, "host/busy/" + what).c_str(),
      [=](benchmark::State& state) {
        Generator gen(0);
        const Tensor a = randn({4096, 4096}, gen, DType::F32, device);
        const std::function<void()> call = make_call();
        call();  // warm
        for (auto _ : state) {
          benchmark::DoNotOptimize(matmul(a, a));
          const auto t0 = std::chrono::steady_clock::now();
          call();
          state.SetIterationTime(seconds_since(t0));
          synchronize(device);
        }
      })
      ->UseManualTime()
      ->Iterations(200)
      ->Unit(benchmark::kMicrosecond);
}

// The three bf16 grouped GEMMs of one projection of 64 experts (OLMoE's up projection, 64 x
// 1024 rows in all): forward, input gradient, weight gradient.
std::function<void()> expert_gemms(Device device, bool varied) {
  Generator gen(2);
  const Tensor x = randn({64 * 1024, 2048}, gen, DType::BF16, device);
  const Tensor dy = randn({64 * 1024, 1024}, gen, DType::BF16, device);
  const std::vector<Tensor> w(64, randn({1024, 2048}, gen, DType::BF16, device));
  std::vector<int64_t> rows(64, 1024);
  for (size_t e = 0; varied && e < rows.size(); e += 2) {
    const int64_t shift = int64_t(e * 97 % 769);
    rows[e] += shift;
    rows[e + 1] -= shift;
  }
  const std::vector<bool> want(64, true);
  return [=] {
    benchmark::DoNotOptimize(grouped_matmul(x, w, rows, true));
    benchmark::DoNotOptimize(grouped_matmul(dy, w, rows, false));
    benchmark::DoNotOptimize(grouped_matmul_tn(dy, x, rows, want));
  };
}

void register_busy_calls(Device device) {
  for (int64_t bytes : {int64_t(1) << 10, int64_t(64) << 10, int64_t(512) << 10})
    register_while_busy(device, "upload/" + std::to_string(bytes), [=] {
      Generator gen(1);
      const Tensor host = randint(0, 1 << 20, {bytes / 8}, gen);  // int64
      return [=] { benchmark::DoNotOptimize(host.to(device)); };
    });
  register_while_busy(device, "matmul/bf16", [=] {  // one expert's forward, for comparison
    Generator gen(2);
    const Tensor x = randn({1024, 2048}, gen, DType::BF16, device);
    const Tensor w = randn({1024, 2048}, gen, DType::BF16, device);
    return [=] { benchmark::DoNotOptimize(matmul(x, w, false, true)); };
  });
  // Routed tokens give every expert its own row count, so every problem its own size: "varied"
  // (1024 +- up to 768 rows, the same total) against "equal" shows what distinct sizes cost the
  // host (cuBLAS picks a kernel per size).
  for (bool varied : {false, true})
    register_while_busy(device,
                        std::string("grouped_matmul/bf16/") + (varied ? "varied" : "equal"),
                        [=] { return expert_gemms(device, varied); });
}

}  // namespace
}  // namespace moegrad::bench

int main(int argc, char** argv) {
  using namespace moegrad;
  return bench::run_benchmarks(argc, argv, [](Device device) {
    for (int64_t n : {64, 65536}) {
      bench::register_op_chain(device, n);
      bench::register_autograd_chain(device, n);
    }
    if (device.is_cuda()) bench::register_busy_calls(device);
  });
}
