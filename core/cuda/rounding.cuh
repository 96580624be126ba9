// Arithmetic that nvcc may not contract into fused multiply-adds. nvcc contracts a * b + c into
// an fma by default; the CPU twins of these kernels are compiled with -ffp-contract=off
// (core/CMakeLists.txt) and round the product on its own. Kernels that must give the CPU's
// bits, or the same bits wherever they are inlined, round their products with mul_rn.
#pragma once
#include <cuda_runtime.h>

namespace moegrad::cuda {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

}  // namespace moegrad::cuda
