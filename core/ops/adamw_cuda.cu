#include <cuda_runtime.h>

#include <climits>
#include <vector>

#include "core/cuda/multi_tensor.cuh"
#include "core/cuda/rounding.cuh"
#include "core/cuda/strided.cuh"
#include "core/ops/adamw.h"
#include "core/ops/unary_op.h"

namespace moegrad::cuda {
namespace {

// Coefficients rounded from f64 on the host, as the CPU backend (and torch) round them.
template <typename T>
struct Coeffs {
  T decay, w1, b2, w2, eps, step_size, bc2, scale;
};

template <typename T>
Coeffs<T> make_coeffs(const AdamWCoefficients& c, double beta1, double beta2, double eps) {
  return {T(c.decay), T(1.0 - beta1), T(beta2),      T(1.0 - beta2),
          T(eps),     T(c.step_size), T(c.bc2_sqrt), T(c.grad_scale)};
}

// One element, in the CPU backend's order and roundings (no fma: see rounding.cuh), so a tensor
// gets the CPU's bits, from the per-tensor and the multi-tensor launch alike.
template <typename T>
__device__ __forceinline__ void update(T& p, T g_read, T& m, T& v, const Coeffs<T>& c) {
  const T g = mul_rn(g_read, c.scale);
  m = m + mul_rn(c.w1, g - m);
  v = mul_rn(v, c.b2) + mul_rn(mul_rn(c.w2, g), g);
  p = mul_rn(p, c.decay) - mul_rn(c.step_size, m / (math::sqrt(v) / c.bc2 + c.eps));
}

// G: the grad's type (T, or bf16 for an f32 master); r, when not null, receives the updated
// param rounded to bf16 (the model's copy of an f32 master).
template <typename T, typename G>
struct StepFunctor {
  T* p;
  const G* g;
  T* m;
  T* v;
  bf16* r;
  Coeffs<T> c;
  __device__ void operator()(const int64_t* off) const {
    T pi = p[off[0]], mi = m[off[2]], vi = v[off[3]];
    update(pi, convert_value<T>(g[off[1]]), mi, vi, c);
    p[off[0]] = pi;
    m[off[2]] = mi;
    v[off[3]] = vi;
    if (r) r[off[4]] = convert_value<bf16>(pi);
  }
};

// Elements per block of the multi-tensor kernel: 16 per thread amortises the block's search
// for its tensor, and a tensor's last block idles at most one chunk.
constexpr int64_t kChunk = int64_t(kBlock) * 16;

// One contiguous tensor of a multi-tensor launch, laid out for the device.
template <typename T, typename G>
struct Slice {
  T* p;
  const G* g;
  T* m;
  T* v;
  bf16* r;  // the bf16 model copy of an f32 master; null otherwise
  int64_t n;
  int64_t first_block;  // the launch's blocks before this tensor's first
  Coeffs<T> c;
};

// Block b updates chunk b - first_block of its slice.
template <typename T, typename G>
__global__ void multi_kernel(const Slice<T, G>* slices, int count) {
  const int64_t b = blockIdx.x;
  // A copy in registers: the stores below could alias the table for all the compiler knows.
  const Slice<T, G> s = slices[slice_of_block(slices, count, b)];
  const int64_t begin = (b - s.first_block) * kChunk;
  const int64_t end = begin + kChunk < s.n ? begin + kChunk : s.n;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    T pi = s.p[i], mi = s.m[i], vi = s.v[i];
    update(pi, convert_value<T>(s.g[i]), mi, vi, s.c);
    s.p[i] = pi;
    s.m[i] = mi;
    s.v[i] = vi;
    if (s.r) s.r[i] = convert_value<bf16>(pi);
  }
}

// Packs the tensors `which` (contiguous; param T, grad G) into one table on the device and
// updates them all in one launch.
template <typename T, typename G>
void launch_multi(const std::vector<AdamWTensors>& tensors,
                  const std::vector<AdamWCoefficients>& coefficients,
                  const std::vector<size_t>& which, double beta1, double beta2, double eps) {
  std::vector<Slice<T, G>> slices;
  int64_t blocks = 0;
  for (size_t i : which) {
    const AdamWTensors& t = tensors[i];
    const int64_t n = t.param.numel();
    if (n == 0) continue;
    slices.push_back({t.param.data<T>(), t.grad.data<G>(), t.exp_avg.data<T>(),
                      t.exp_avg_sq.data<T>(),
                      t.bf16_param.defined() ? t.bf16_param.data<bf16>() : nullptr, n, blocks,
                      make_coeffs<T>(coefficients[i], beta1, beta2, eps)});
    blocks += (n + kChunk - 1) / kChunk;
  }
  if (slices.empty()) return;
  MOEGRAD_CHECK(blocks <= INT_MAX && slices.size() <= size_t(INT_MAX),
                "adamw_step_multi: ", slices.size(), " tensors in ", blocks,
                " blocks are too many for one launch");
  const Device device = tensors[which[0]].param.device();
  const size_t bytes = slices.size() * sizeof(Slice<T, G>);
  Tensor table = empty({int64_t((bytes + 7) / 8)}, DType::I64, device);
  // `slices` may go once the copy is queued; `table` may go too: the caching allocator hands its
  // block out again only for work ordered after this kernel on the same stream.
  copy_bytes(table.data_ptr(), device, slices.data(), Device::cpu(), bytes);
  cudaStream_t s = stream(device.index);
  multi_kernel<T, G><<<unsigned(blocks), kBlock, 0, s>>>(
      static_cast<const Slice<T, G>*>(table.data_ptr()), int(slices.size()));
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const Tensor& bf16_param, const AdamWCoefficients& c,
                double beta1, double beta2, double eps) {
  const bool mixed = bf16_param.defined();
  const Shape& r_strides = mixed ? bf16_param.strides() : param.strides();
  bf16* r = mixed ? bf16_param.data<bf16>() : nullptr;
  auto launch = [&](auto param_tag, auto grad_tag) {
    using T = typename decltype(param_tag)::type;
    using G = typename decltype(grad_tag)::type;
    launch_elementwise<5>(param.shape(),
                          {param.strides(), grad.strides(), exp_avg.strides(),
                           exp_avg_sq.strides(), r_strides},
                          param.device().index,
                          StepFunctor<T, G>{param.data<T>(), grad.data<G>(), exp_avg.data<T>(),
                                            exp_avg_sq.data<T>(), r,
                                            make_coeffs<T>(c, beta1, beta2, eps)});
  };
  if (grad.dtype() == DType::BF16) {
    launch(type_tag<float>{}, type_tag<bf16>{});  // adamw.cpp admits only an f32 master here
    return;
  }
  dispatch_float(param.dtype(), "adamw_step", [&](auto tag) { launch(tag, tag); });
}

void adamw_step_multi(const std::vector<AdamWTensors>& tensors,
                      const std::vector<AdamWCoefficients>& coefficients, double beta1,
                      double beta2, double eps) {
  std::vector<size_t> f32, f64, mixed;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AdamWTensors& t = tensors[i];
    if (!t.grad.defined()) continue;
    const bool dense = t.param.is_contiguous() && t.grad.is_contiguous() &&
                       t.exp_avg.is_contiguous() && t.exp_avg_sq.is_contiguous() &&
                       (!t.bf16_param.defined() || t.bf16_param.is_contiguous());
    if (dense && t.grad.dtype() == DType::BF16) {
      mixed.push_back(i);
    } else if (dense && t.param.dtype() == DType::F32) {
      f32.push_back(i);
    } else if (dense && t.param.dtype() == DType::F64) {
      f64.push_back(i);
    } else {
      adamw_step(t.param, t.grad, t.exp_avg, t.exp_avg_sq, t.bf16_param, coefficients[i], beta1,
                 beta2, eps);
    }
  }
  launch_multi<float, float>(tensors, coefficients, f32, beta1, beta2, eps);
  launch_multi<double, double>(tensors, coefficients, f64, beta1, beta2, eps);
  launch_multi<float, bf16>(tensors, coefficients, mixed, beta1, beta2, eps);
}

}  // namespace moegrad::cuda
