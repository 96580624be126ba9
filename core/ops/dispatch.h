// Routes an op to its CPU or CUDA implementation by the device of its tensors.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/profiler.h"
#include "core/tensor.h"

namespace moegrad {

[[noreturn]] inline void throw_no_cuda(const char* op) {
  throw Error(std::string(op) + ": tensor is on a CUDA device, but moegrad was built without CUDA");
}

}  // namespace moegrad

namespace moegrad::profiler {

// An op's cost from its backend arguments: the bytes of every tensor (read or written), and
// what an overload found by argument-dependent lookup adds for its own types (a GEMM's FLOPs).
inline void add_cost(Cost& c, const Tensor& t) {
  if (t.defined()) c.bytes += double(t.numel()) * double(dtype_size(t.dtype()));
}
template <typename T>
void add_cost(Cost&, const T&) {}  // scalars, flags, op codes
template <typename T>
void add_cost(Cost& c, const std::vector<T>& items) {
  for (const T& item : items) add_cost(c, item);
}
template <typename... Args>
Cost op_cost(const Args&... args) {
  Cost c;
  (add_cost(c, args), ...);
  return c;
}

// Runs `backend` on the arguments, as one profiled op when a profile is recording.
template <typename Backend, typename... Args>
void run_op(std::string_view name, Device device, Backend&& backend, Args&&... args) {
  if (!enabled()) return backend(std::forward<Args>(args)...);
  Scope scope(Kind::Op, name, device, op_cost(args...));
  backend(std::forward<Args>(args)...);
}

}  // namespace moegrad::profiler

// MOEGRAD_DISPATCH(device, "op", fn, args...) calls cpu::fn(args...) or cuda::fn(args...), each
// argument evaluated once, as one profiled op.
#ifdef MOEGRAD_WITH_CUDA
#define MOEGRAD_DISPATCH(device, opname, fn, ...)                                         \
  ::moegrad::profiler::run_op(                                                            \
      (opname), (device),                                                                 \
      [&](auto&&... moegrad_args) {                                                       \
        if ((device).is_cuda()) {                                                         \
          ::moegrad::cuda::fn(std::forward<decltype(moegrad_args)>(moegrad_args)...);     \
        } else {                                                                          \
          ::moegrad::cpu::fn(std::forward<decltype(moegrad_args)>(moegrad_args)...);      \
        }                                                                                 \
      },                                                                                  \
      __VA_ARGS__)
#else
#define MOEGRAD_DISPATCH(device, opname, fn, ...)                                         \
  ::moegrad::profiler::run_op(                                                            \
      (opname), (device),                                                                 \
      [&](auto&&... moegrad_args) {                                                       \
        if ((device).is_cuda()) ::moegrad::throw_no_cuda(opname);                         \
        ::moegrad::cpu::fn(std::forward<decltype(moegrad_args)>(moegrad_args)...);        \
      },                                                                                  \
      __VA_ARGS__)
#endif

// For op families whose CUDA kernels have not landed yet: a clear error instead of a crash.
#define MOEGRAD_CPU_ONLY(device, opname)                                                  \
  MOEGRAD_CHECK((device).is_cpu(), opname, ": no CUDA kernel yet; move the tensor to the " \
                                           "CPU with .to(Device::cpu())")
