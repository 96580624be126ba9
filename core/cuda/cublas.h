// The cuBLAS handle of each device, bound to moegrad's stream, and its error check.
#pragma once

typedef struct cublasContext* cublasHandle_t;

namespace moegrad::cuda {

cublasHandle_t cublas_handle(int device);
void cublas_check(int status, const char* call, const char* file, int line);

}  // namespace moegrad::cuda

#define MOEGRAD_CUBLAS_CHECK(call) \
  ::moegrad::cuda::cublas_check(int(call), #call, __FILE__, __LINE__)
