// Memory bandwidth of moegrad's elementwise ops and reductions against a plain copy, in the
// same run. Each benchmark reports GB/s over the bytes it must read and write at least once
// (f32 values, or bf16 for the _bf16 rows); "<device>/memcpy" is the reference: memcpy split
// over the OpenMP threads on the CPU, a device-to-device cudaMemcpyAsync on a GPU. The inputs
// are far larger than the last-level cache, so every byte comes from DRAM (HBM).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/ops/binary.h"
#include "core/ops/cross_entropy.h"
#include "core/ops/index.h"
#include "core/ops/multi_tensor.h"
#include "core/ops/reduce.h"
#include "core/ops/rope.h"
#include "core/ops/swiglu.h"
#include "core/ops/unary.h"
#include "core/random.h"

namespace moegrad::bench {
namespace {

// rows x cols f32: 64 MiB on the CPU (twice its 32 MiB L3), 256 MiB on a GPU.
Shape matrix_shape(Device device) { return device.is_cpu() ? Shape{4096, 4096} : Shape{8192, 8192}; }

Tensor random_matrix(const Shape& shape, Device device, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, gen, DType::F32, device);
}

void copy_bytes(void* dst, const void* src, size_t nbytes, Device device) {
  if (device.is_cpu()) {
#pragma omp parallel
    {
      size_t threads = size_t(omp_get_num_threads()), t = size_t(omp_get_thread_num());
      size_t chunk = (nbytes / threads + 63) / 64 * 64;
      size_t begin = std::min(nbytes, t * chunk), end = std::min(nbytes, begin + chunk);
      std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
    }
    return;
  }
#ifdef MOEGRAD_WITH_CUDA
  MOEGRAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice,
                                     cuda::stream(device.index)));
#endif
}

// cross_entropy_backward over `logits` with targets (i * 7919) % cols, and the logsumexp and
// the loss's gradient made on the first call for this shape and device (outside the kernel's
// own work: the forward checks its targets, a host wait).
void cross_entropy_backward_rows(const Tensor& logits) {
  static Tensor targets, lse, grad;
  if (!targets.defined() || targets.size(0) != logits.size(0) ||
      targets.device() != logits.device()) {
    std::vector<int64_t> t(size_t(logits.size(0)));
    for (size_t i = 0; i < t.size(); ++i) t[i] = int64_t(i * 7919 % size_t(logits.size(1)));
    targets = from_vector(t, {logits.size(0)}).to(logits.device());
    lse = cross_entropy_forward(logits.to(DType::F32), targets).lse;
    grad = ones({}, DType::F32, logits.device());
  }
  benchmark::DoNotOptimize(cross_entropy_backward(grad, logits, targets, lse, -100, Reduction::Mean,
                                                  IndexBounds::Trusted));
}

// One elementwise benchmark: `arrays` is how many full-size arrays of `dtype` it moves (inputs
// read plus outputs written); `op` gets the two prepared matrices a, b and the row vector w, all
// of `dtype`.
struct Op {
  const char* name;
  int arrays;
  std::function<void(const Tensor& a, const Tensor& b, const Tensor& w)> run;
  DType dtype = DType::F32;
};

std::vector<Op> ops() {
  return {
      {"add", 3, [](const Tensor& a, const Tensor& b, const Tensor&) { benchmark::DoNotOptimize(add(a, b)); }},
      // In place: the same kernel without allocating (and first touching) a fresh output.
      {"add_inplace", 3, [](const Tensor& a, const Tensor& b, const Tensor&) { add_(a, b); }},
      // x * w with w [cols] broadcast over the rows, as RMSNorm's weight.
      {"mul_broadcast", 2, [](const Tensor& a, const Tensor&, const Tensor& w) { benchmark::DoNotOptimize(mul(a, w)); }},
      {"silu", 2, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(silu(a)); }},
      {"copy_transposed", 2, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(a.t().contiguous()); }},
      {"sum_last_dim", 1, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(sum(a, {-1})); }},
      // RoPE on attention's heads as the model sees them, [B, T, H, D] projections viewed as
      // [B, H, T, D] (16 x 256 tokens, 64 heads of 64), and on contiguous [B, H, T, D].
      {"rope_heads", 2, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(rope(a.view({-1, 256, 64, 64}).transpose(1, 2), 10000.0)); }},
      {"rope_contiguous", 2, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(rope(a.view({-1, 64, 256, 64}), 10000.0)); }},
      // The experts' combine: every row of a added onto zeros at row (i * 1009) % 1024, rows / 1024
      // rows an output row in scattered order (bytes counted: a's, read once). The index is made
      // once, outside the timed calls.
      {"index_add_to_zeros", 1, [](const Tensor& a, const Tensor&, const Tensor&) {
         static Tensor idx;
         if (!idx.defined() || idx.size(0) != a.size(0) || idx.device() != a.device()) {
           std::vector<int64_t> rows(size_t(a.size(0)));
           for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i * 1009 % 1024);
           idx = from_vector(rows, {a.size(0)}).to(a.device());
         }
         benchmark::DoNotOptimize(index_add_to_zeros({1024, a.size(1)}, 0, idx, a, IndexBounds::Trusted));
       }},
      // The experts' activation times the routing weight of each row (gate a, up b; the scale
      // a column of b), and its backward (grad a, gate b, up a): d_gate and d_up written side by
      // side, and the scale's gradient, a sum a row.
      {"swiglu_scaled", 3, [](const Tensor& a, const Tensor& b, const Tensor&) { benchmark::DoNotOptimize(swiglu_scaled(a, b, b.narrow(1, 0, 1))); }},
      {"swiglu_scaled_backward", 5, [](const Tensor& a, const Tensor& b, const Tensor&) { benchmark::DoNotOptimize(swiglu_scaled_backward(a, b, a, b.narrow(1, 0, 1), true, true)); }},
      // The LM loss's gradient over [rows, cols] logits (softmax minus one-hot, from the saved
      // logsumexp): logits read, dlogits written. Targets and logsumexp are made once.
      {"cross_entropy_backward", 2, [](const Tensor& a, const Tensor&, const Tensor&) { cross_entropy_backward_rows(a); }},
      // Gradient clipping's two passes over the gradients: the global norm, then the rescale.
      {"sum_of_squares", 2, [](const Tensor& a, const Tensor& b, const Tensor&) { benchmark::DoNotOptimize(sum_of_squares({a, b})); }},
      {"scale_inplace", 2, [](const Tensor& a, const Tensor&, const Tensor&) { scale_({a}, 1.0); }},
      // A bf16 step's own traffic: two bytes an element, and its conversions (the bf16 read and
      // the f32 written are three bf16 arrays).
      {"add_bf16", 3, [](const Tensor& a, const Tensor& b, const Tensor&) { benchmark::DoNotOptimize(add(a, b)); }, DType::BF16},
      {"silu_bf16", 2, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(silu(a)); }, DType::BF16},
      {"bf16_to_f32", 3, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(a.to(DType::F32)); }, DType::BF16},
      // The bf16 step's row kernels, as above.
      {"rope_heads_bf16", 2, [](const Tensor& a, const Tensor&, const Tensor&) { benchmark::DoNotOptimize(rope(a.view({-1, 256, 64, 64}).transpose(1, 2), 10000.0)); }, DType::BF16},
      {"swiglu_scaled_bf16", 3, [](const Tensor& a, const Tensor& b, const Tensor&) { benchmark::DoNotOptimize(swiglu_scaled(a, b, b.narrow(1, 0, 1))); }, DType::BF16},
      {"swiglu_scaled_backward_bf16", 5, [](const Tensor& a, const Tensor& b, const Tensor&) { benchmark::DoNotOptimize(swiglu_scaled_backward(a, b, a, b.narrow(1, 0, 1), true, true)); }, DType::BF16},
      {"cross_entropy_backward_bf16", 2, [](const Tensor& a, const Tensor&, const Tensor&) { cross_entropy_backward_rows(a); }, DType::BF16},
  };
}

void register_op(Device device, const Op& op) {
  register_on(device, op.name, [=](benchmark::State& state) {
    Shape shape = matrix_shape(device);
    Tensor a = random_matrix(shape, device, 1).to(op.dtype);
    Tensor b = random_matrix(shape, device, 2).to(op.dtype);
    Tensor w = random_matrix({shape[1]}, device, 3).to(op.dtype);
    time_iterations(state, device, [&] { op.run(a, b, w); });
    state.SetBytesProcessed(state.iterations() * op.arrays * a.numel() *
                            int64_t(dtype_size(op.dtype)));
  })->Unit(benchmark::kMicrosecond);
}

void register_memcpy(Device device) {
  register_on(device, "memcpy", [=](benchmark::State& state) {
    Tensor src = random_matrix(matrix_shape(device), device, 1), dst = empty_like(src);
    size_t nbytes = size_t(src.numel()) * sizeof(float);
    time_iterations(state, device, [&] { copy_bytes(dst.data_ptr(), src.data_ptr(), nbytes, device); });
    state.SetBytesProcessed(state.iterations() * 2 * int64_t(nbytes));
  })->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace moegrad::bench

int main(int argc, char** argv) {
  using namespace moegrad;
  return bench::run_benchmarks(argc, argv, [](Device device) {
    bench::register_memcpy(device);
    for (const bench::Op& op : bench::ops()) bench::register_op(device, op);
  });
}
