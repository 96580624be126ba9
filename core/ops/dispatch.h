// Routes an op to its CPU or CUDA implementation by the device of its tensors.
#pragma once
#include <string>

#include "core/device.h"
#include "core/error.h"

namespace moegrad {

[[noreturn]] inline void throw_no_cuda(const char* op) {
  throw Error(std::string(op) + ": tensor is on a CUDA device, but moegrad was built without CUDA");
}

}  // namespace moegrad

// MOEGRAD_DISPATCH(device, "op", fn, args...) calls cpu::fn(args...) or cuda::fn(args...).
#ifdef MOEGRAD_WITH_CUDA
#define MOEGRAD_DISPATCH(device, opname, fn, ...) \
  ((device).is_cuda() ? ::moegrad::cuda::fn(__VA_ARGS__) : ::moegrad::cpu::fn(__VA_ARGS__))
#else
#define MOEGRAD_DISPATCH(device, opname, fn, ...) \
  ((device).is_cuda() ? ::moegrad::throw_no_cuda(opname) : ::moegrad::cpu::fn(__VA_ARGS__))
#endif

// For op families whose CUDA kernels have not landed yet: a clear error instead of a crash.
#define MOEGRAD_CPU_ONLY(device, opname)                                                  \
  MOEGRAD_CHECK((device).is_cpu(), opname, ": no CUDA kernel yet; move the tensor to the " \
                                           "CPU with .to(Device::cpu())")
