// CUDA runtime plumbing: error checks that name the failing call, the device count, the one
// stream per device that all moegrad work is ordered on, and host<->device copies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/device.h"

typedef struct CUstream_st* cudaStream_t;

namespace moegrad::cuda {

// Throws moegrad::Error naming `call`, the file and line and the CUDA error string.
void check(int status, const char* call, const char* file, int line);

int device_count();  // 0 when no driver or no device is present (never throws)
void set_device(int index);
// The stream every kernel, copy and cuBLAS call of moegrad on this device runs on. One stream
// keeps the caching allocator's reuse of freed blocks ordered after their last use.
cudaStream_t stream(int index);
void synchronize(int index);
// How many times the host has waited for a device (synchronize, copies to the host, reuse of
// staging bytes an upload still reads) since the process started: each one drains the device's queue, and a step with many runs host-bound.
int64_t host_waits();
// Copies nbytes between any two devices (host included). Returns once the source may be
// reused and, for a copy to the host, the data is there; a copy to a device completes in
// stream order. Uploads of up to 64 MiB go through a pinned staging buffer (64 MiB of page-locked
// host memory per device, taken on the first upload), so the host does not wait for the device.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// A copy to the host that the host collects later: small values it reads a while after the
// device makes them (an MoE layer's expert counts, read in its backward). The copy is queued on
// the stream into page-locked memory, so starting it does not wait; `wait_into` waits only until
// the stream has reached it (a host wait only when it has not yet), not for what was queued after.
class Download {
 public:
  struct Block;  // a page-locked block and its event, kept in a pool

  Download(const void* src, Device src_device, size_t nbytes);
  ~Download();  // gives its page-locked block back for reuse once the copy has landed
  Download(const Download&) = delete;
  Download& operator=(const Download&) = delete;
  void wait_into(void* dst);

 private:
  Block* block_ = nullptr;
  size_t nbytes_;
};

}  // namespace moegrad::cuda

#define MOEGRAD_CUDA_CHECK(call) ::moegrad::cuda::check(int(call), #call, __FILE__, __LINE__)
