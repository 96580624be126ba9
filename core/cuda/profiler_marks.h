// The CUDA side of the profiler: timing events on moegrad's stream, from a pool reused across
// profiles, and NVTX ranges.
#pragma once

namespace moegrad::cuda {

// Records a timing event on the device's stream now (in stream order).
void* profiler_mark(int device);
// Milliseconds from mark `from` to mark `to`; waits for `to` to complete.
double profiler_elapsed_ms(void* from, void* to);
// Hands every mark back to the pool.
void profiler_release_marks();

void nvtx_push(const char* name);
void nvtx_pop();

}  // namespace moegrad::cuda
