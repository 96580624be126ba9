// What a training step costs the host on a GPU, where a step whose host cannot enqueue work as
// fast as the device runs it is host-bound (bench/README.md: medium.cfg in bf16). Host wall
// clock throughout, per call:
//   "<device>/host/op/add/<n>"           a 1000-op chain of moegrad::add on [n] tensors, the
//                                        device synchronised at the end: allocation, dispatch,
//                                        launch; on a GPU at least the kernels' own time
//   "<device>/host/autograd/mul/<n>"     the same chain of autograd mul, then its backward:
//                                        the graph's bookkeeping on top (per forward op)
//   "cuda/host/upload_busy/<bytes>"      Tensor::to(cuda) of a host tensor while a 4096^3 f32
//                                        GEMM (about 2.7 ms on an H100) is queued: near zero if
//                                        the upload is staged and returns, near the GEMM's time
//                                        if it waits for the stream (the experts upload their
//                                        routing tables, cuBLAS's grouped GEMM its address
//                                        tables, this way)
#include <chrono>
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

void register_upload_while_busy(Device device, int64_t bytes) {
  benchmark::RegisterBenchmark(
      ("cuda/host/upload_busy/" + std::to_string(bytes)).c_str(),
      [=](benchmark::State& state) {
        Generator gen(0);
        const Tensor a = randn({4096, 4096}, gen, DType::F32, device);
        const Tensor host = randint(0, 1 << 20, {bytes / 8}, gen);  // int64
        for (auto _ : state) {
          benchmark::DoNotOptimize(matmul(a, a));
          const auto t0 = std::chrono::steady_clock::now();
          benchmark::DoNotOptimize(host.to(device));
          state.SetIterationTime(seconds_since(t0));
          synchronize(device);
        }
      })
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
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
    if (device.is_cuda())
      for (int64_t bytes : {int64_t(1) << 10, int64_t(64) << 10, int64_t(512) << 10})
        bench::register_upload_while_busy(device, bytes);
  });
}
