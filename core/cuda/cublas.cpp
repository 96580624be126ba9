#include "core/cuda/cublas.h"

#include <cublas_v2.h>

#include <mutex>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/error.h"

namespace moegrad::cuda {

void cublas_check(int status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(detail::concat("cuBLAS error in ", call, " at ", file, ":", line, ": ",
                             cublasGetStatusName(static_cast<cublasStatus_t>(status)), " (",
                             cublasGetStatusString(static_cast<cublasStatus_t>(status)), ")"));
}

cublasHandle_t cublas_handle(int device) {
  static std::mutex mu;
  static std::vector<cublasHandle_t> handles;
  std::lock_guard<std::mutex> lock(mu);
  if (handles.empty()) handles.assign(std::max(device_count(), 1), nullptr);
  if (!handles[device]) {
    set_device(device);
    MOEGRAD_CUBLAS_CHECK(cublasCreate(&handles[device]));
    MOEGRAD_CUBLAS_CHECK(cublasSetStream(handles[device], stream(device)));
    // Deterministic results run to run: no split-K reductions with atomics.
    MOEGRAD_CUBLAS_CHECK(cublasSetAtomicsMode(handles[device], CUBLAS_ATOMICS_NOT_ALLOWED));
  }
  return handles[device];
}

}  // namespace moegrad::cuda
