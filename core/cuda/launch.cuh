// A kernel launch with dynamic shared memory on a device's stream.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "core/cuda/runtime.h"
#include "core/cuda/strided.cuh"  // MOEGRAD_CUDA_CHECK_LAUNCH

namespace moegrad::cuda {

// kernel<<<grid, threads, bytes>>>(args...) on the device's stream; an empty grid launches
// nothing (CUDA rejects it). Above 48 KiB of dynamic shared memory a kernel must opt in, up to
// 227 KiB a block on an H100.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, int threads, size_t bytes, int device,
            Args... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  MOEGRAD_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  kernel<<<grid, threads, bytes, stream(device)>>>(args...);
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace moegrad::cuda
