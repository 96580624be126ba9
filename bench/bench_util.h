// What the benchmark programs share: timing one iteration on the CPU (wall clock, since
// OpenBLAS and OpenMP work on several threads) or on a GPU (CUDA events on moegrad's stream),
// and registration of one benchmark for each device present.
#pragma once
#include <benchmark/benchmark.h>

#include <functional>
#include <string>
#include <vector>

#include "core/device.h"

#ifdef MOEGRAD_WITH_CUDA
#include <cuda_runtime.h>

#include "core/cuda/runtime.h"
#endif

namespace moegrad::bench {

// Runs `body` once per iteration. On a GPU each iteration is timed from an event recorded
// before the body's work to one after it, so host-side overhead that leaves the GPU idle
// (planning, allocation, launch) counts, but the final synchronisation does not.
inline void time_iterations(benchmark::State& state, Device device, const std::function<void()>& body) {
  // One untimed run first: thread pools start, preallocated buffers are first touched, cuBLAS
  // picks its kernels and the caching allocator gets its blocks.
  body();
  if (device.is_cpu()) {
    for (auto _ : state) body();
    return;
  }
#ifdef MOEGRAD_WITH_CUDA
  cudaStream_t s = cuda::stream(device.index);
  cudaEvent_t start, stop;
  MOEGRAD_CUDA_CHECK(cudaEventCreate(&start));
  MOEGRAD_CUDA_CHECK(cudaEventCreate(&stop));
  for (auto _ : state) {
    MOEGRAD_CUDA_CHECK(cudaEventRecord(start, s));
    body();
    MOEGRAD_CUDA_CHECK(cudaEventRecord(stop, s));
    MOEGRAD_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    MOEGRAD_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms * 1e-3);
  }
  MOEGRAD_CUDA_CHECK(cudaEventDestroy(start));
  MOEGRAD_CUDA_CHECK(cudaEventDestroy(stop));
#endif
}

// The devices to benchmark: the CPU, and CUDA device 0 when one is present.
inline std::vector<Device> bench_devices() {
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available()) devices.push_back(Device::cuda(0));
  benchmark::AddCustomContext("cuda", cuda_available() ? "cuda:0" : "no device: CUDA benchmarks skipped");
  return devices;
}

// Registers `fn` as "<device>/<name>", timed by wall clock on the CPU and by events on a GPU.
inline benchmark::internal::Benchmark* register_on(Device device, const std::string& name,
                                                   std::function<void(benchmark::State&)> fn) {
  std::string full = (device.is_cpu() ? "cpu/" : "cuda/") + name;
  auto* b = benchmark::RegisterBenchmark(full.c_str(), std::move(fn));
  return device.is_cpu() ? b->UseRealTime() : b->UseManualTime();
}

// A benchmark program's main: parses Google Benchmark's flags, lets `register_device` register
// the benchmarks of each device present, runs the ones the flags select.
inline int run_benchmarks(int argc, char** argv,
                          const std::function<void(Device)>& register_device) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (Device device : bench_devices()) register_device(device);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace moegrad::bench
