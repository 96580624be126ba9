// CUDA elementwise kernels: strided indexing, which maps a linear index over an output shape to
// the element offsets of up to N operands after the same dim coalescing as the CPU loop, and the
// launchers of functors over it (launch_elementwise) or over element values (launch_map).
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>
#include <utility>
#if defined(__CUDACC__)
#include <cuda/std/tuple>
#include <cuda/std/utility>
#endif

#include "core/cuda/runtime.h"
#include "core/error.h"
#include "core/fast_divmod.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace moegrad::cuda {

// Kernel functors take their op as an `int` template parameter, cast back to the enum inside:
// nvcc 13's host-stub generator emits broken code for enum parameters from generic lambdas.
inline constexpr int kMaxDims = 12;

#if defined(__CUDACC__)
#define MOEGRAD_UNROLL _Pragma("unroll")
#else
#define MOEGRAD_UNROLL
#endif
inline constexpr int kBlock = 256;

template <int N>
struct StridedIndex {
  int ndim = 0;
  int64_t size[kMaxDims];            // innermost first
  FastDivmod divider[kMaxDims];      // size[d]'s, when `narrow`
  int64_t stride[N][kMaxDims];
  bool contiguous = true;            // all operands dense and in order: offset == linear index
  bool narrow = false;               // fewer than 2^31 elements: 32-bit index arithmetic

  // Host-callable too, so the index arithmetic is tested without a GPU.
  MOEGRAD_HD void offsets(int64_t linear, int64_t (&off)[N]) const {
    if (contiguous) {
MOEGRAD_UNROLL
      for (int k = 0; k < N; ++k) off[k] = linear;
      return;
    }
MOEGRAD_UNROLL
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (narrow) {
      // The outermost dim's index is what is left: it needs no division.
      uint32_t rest = uint32_t(linear);
      for (int d = 0; d < ndim - 1; ++d) {
        const uint32_t q = divider[d].div(rest);
        const int64_t i = int64_t(rest - q * divider[d].divisor());
        rest = q;
MOEGRAD_UNROLL
        for (int k = 0; k < N; ++k) off[k] += i * stride[k][d];
      }
MOEGRAD_UNROLL
      for (int k = 0; k < N; ++k) off[k] += int64_t(rest) * stride[k][ndim - 1];
      return;
    }
    for (int d = 0; d < ndim; ++d) {
      int64_t i = linear % size[d];
      linear /= size[d];
MOEGRAD_UNROLL
      for (int k = 0; k < N; ++k) off[k] += i * stride[k][d];
    }
  }
};

template <int N>
StridedIndex<N> make_strided_index(const Shape& shape, const ShapeRefs<N>& strides) {
  StridedIndex<N> ix;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (ix.ndim > 0) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (strides[k].get()[d] != ix.stride[k][ix.ndim - 1] * ix.size[ix.ndim - 1])
          mergeable = false;
      if (mergeable) {
        ix.size[ix.ndim - 1] *= shape[d];
        continue;
      }
    }
    MOEGRAD_CHECK(ix.ndim < kMaxDims, "CUDA kernels support at most ", kMaxDims,
                  " non-mergeable dims, got shape ", shape_str(shape));
    ix.size[ix.ndim] = shape[d];
    for (int k = 0; k < N; ++k) ix.stride[k][ix.ndim] = strides[k].get()[d];
    ++ix.ndim;
  }
  ix.contiguous = ix.ndim <= 1;
  for (int k = 0; k < N && ix.ndim == 1; ++k) ix.contiguous &= ix.stride[k][0] == 1;
  if (ix.ndim == 0) ix.contiguous = true;
  const int64_t numel = shape_numel(shape);
  ix.narrow = numel > 0 && numel < (int64_t(1) << 31);
  if (ix.narrow)
    for (int d = 0; d < ix.ndim; ++d) ix.divider[d] = FastDivmod(ix.size[d]);
  return ix;
}

inline unsigned grid_for(int64_t n) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
  return unsigned(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535 * 8));
}

// Elements a thread of the dense map kernel moves at a time: 16 bytes of the widest operand (8
// bf16, 4 f32), one vector access per operand. At one element a thread, each thread has one
// 2- or 4-byte load in flight: too few bytes to cover an H100's memory latency (session 7's
// bench_elementwise: an f32 add at 2.15 TB/s and silu at 1.74 against a 2.89 TB/s device
// copy; a bf16 load is half as wide).
template <typename... T>
inline constexpr int kVectorWidth = int(16 / std::max({sizeof(T)...}));

// Whether every operand's address (with its element size) is a multiple of `width` of its
// elements, so that vectors of `width` elements are aligned.
inline bool vector_aligned(int width,
                           std::initializer_list<std::pair<const void*, size_t>> operands) {
  for (const auto& [address, size] : operands)
    if (reinterpret_cast<uintptr_t>(address) % (size * size_t(width)) != 0) return false;
  return true;
}

// Whether rows of D elements of each of `tensors` split into aligned vectors of
// kVectorWidth<Types...> elements: D a multiple of the width, every tensor's first element at a
// vector's address, its innermost dim of more than one element (the row's) of unit stride and
// every other stride a multiple of the width.
template <typename... Types>
bool rows_split(int64_t D, std::initializer_list<const Tensor*> tensors) {
  constexpr int kWidth = kVectorWidth<Types...>;
  if (D % kWidth != 0) return false;
  for (const Tensor* t : tensors) {
    if (!vector_aligned(kWidth, {{t->data_ptr(), dtype_size(t->dtype())}})) return false;
    bool row = true;
    for (int64_t d = t->dim() - 1; d >= 0; --d) {
      if (t->size(d) <= 1) continue;
      if (row ? t->stride(d) != 1 : t->stride(d) % kWidth != 0) return false;
      row = false;
    }
  }
  return true;
}

// f(std::integral_constant<int, V>) with V = kVectorWidth<Types...> when `vectors` (the caller's
// operands split into aligned vectors of that width), else V = 1: the kernels' two
// instantiations.
template <typename... Types, typename F>
void with_vector_width(bool vectors, F&& f) {
  if (vectors)
    f(std::integral_constant<int, kVectorWidth<Types...>>{});
  else
    f(std::integral_constant<int, 1>{});
}

}  // namespace moegrad::cuda

// Checks the launch itself (bad configuration, missing kernel image) right after <<<...>>>.
#define MOEGRAD_CUDA_CHECK_LAUNCH() MOEGRAD_CUDA_CHECK(cudaGetLastError())

#if defined(__CUDACC__)
namespace moegrad::cuda {

// Grid-stride loop over every element of the output: f(off) with off[k] the element offset of
// operand k.
template <int N, typename F>
__global__ void elementwise_kernel(int64_t n, StridedIndex<N> ix, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    ix.offsets(i, off);
    f(off);
  }
}

// Runs functor `f` (a struct with `__device__ void operator()(const int64_t* off) const`) over
// `shape`, operand k having `strides[k]`, on moegrad's stream of `device`.
template <int N, typename F>
void launch_elementwise(const Shape& shape, const ShapeRefs<N>& strides, int device, F f) {
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  auto ix = make_strided_index<N>(shape, strides);
  elementwise_kernel<N, F><<<grid_for(n), kBlock, 0, stream(device)>>>(n, ix, f);
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

template <typename T, int V>
struct alignas(sizeof(T) * V) Vector {
  T v[V];
};

// The unsigned type of `Bytes` bytes (up to 16: uint4), in which a vector moves as one access: a
// copy of the Vector struct itself would move element by element (bf16 is a struct).
template <int Bytes>
using RawVector = std::conditional_t<
    Bytes == 16, uint4,
    std::conditional_t<Bytes == 8, uint2,
                       std::conditional_t<Bytes == 4, uint32_t,
                                          std::conditional_t<Bytes == 2, uint16_t, uint8_t>>>>;

template <int V, typename T>
__device__ __forceinline__ Vector<T, V> load_vector(const T* p) {
  using Raw = RawVector<int(sizeof(T)) * V>;
  static_assert(sizeof(Raw) == sizeof(Vector<T, V>));
  const Raw raw = *reinterpret_cast<const Raw*>(p);
  Vector<T, V> v;
  memcpy(&v, &raw, sizeof(raw));
  return v;
}

template <int V, typename T>
__device__ __forceinline__ void store_vector(T* p, const Vector<T, V>& v) {
  using Raw = RawVector<int(sizeof(T)) * V>;
  static_assert(sizeof(Raw) == sizeof(v));
  Raw raw;
  memcpy(&raw, &v, sizeof(raw));
  *reinterpret_cast<Raw*>(p) = raw;
}

// out[0, V) = fn(x[0, V)...), stored as one access.
template <int V, typename Fn, typename Out, typename... In>
__device__ __forceinline__ void store_mapped(Out* out, const Fn& fn, const Vector<In, V>&... x) {
  Vector<Out, V> y;
MOEGRAD_UNROLL
  for (int j = 0; j < V; ++j) y.v[j] = fn(x.v[j]...);
  store_vector<V>(out, y);
}

// out[i] = fn(in[i]...) for i < n, every operand dense: a thread takes V consecutive elements
// at a time, and its vector loads of every operand are issued before its store.
template <int V, typename Fn, typename Out, typename... In>
__global__ void dense_map_kernel(int64_t n, Fn fn, Out* out, const In*... in) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x * V;
  for (int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * V; i < n; i += step) {
    if (i + V <= n) {
      store_mapped<V>(out + i, fn, load_vector<V>(in + i)...);
    } else {
      for (int64_t j = i; j < n; ++j) out[j] = fn(in[j]...);
    }
  }
}

// launch_map's functor for operands that are not all dense: the element at each operand's offset.
template <typename Fn, typename Out, typename... In>
struct StridedMap {
  Fn fn;
  Out* out;
  ::cuda::std::tuple<const In*...> in;
  __device__ void operator()(const int64_t* off) const {
    apply(off, ::cuda::std::index_sequence_for<In...>{});
  }
  template <size_t... K>
  __device__ void apply(const int64_t* off, ::cuda::std::index_sequence<K...>) const {
    out[off[0]] = fn(::cuda::std::get<K>(in)[off[K + 1]]...);
  }
};

// out = fn(in...) element by element over out's shape, each input of element type In broadcast
// to it by its strides, on out's device; Fn has `__device__ Out operator()(In...) const`. When
// every operand is dense and in the same order (offset = index), the dense kernel runs, with
// vectors of kVectorWidth<Out, In...> elements if they are aligned; otherwise the strided one.
template <typename Out, typename... In, typename Fn, typename... Tensors>
void launch_map(const Fn& fn, const Tensor& out, const Tensors&... in) {
  static_assert(sizeof...(In) == sizeof...(Tensors), "launch_map: one element type an input");
  const int64_t n = out.numel();
  if (n == 0) return;
  constexpr int N = 1 + int(sizeof...(In));
  const StridedIndex<N> ix = make_strided_index<N>(out.shape(), {out.strides(), in.strides()...});
  cudaStream_t s = stream(out.device().index);
  Out* o = static_cast<Out*>(out.data_ptr());
  if (ix.contiguous) {
    constexpr int kWide = kVectorWidth<Out, In...>;
    const bool aligned = vector_aligned(kWide, {{o, sizeof(Out)}, {in.data_ptr(), sizeof(In)}...});
    with_vector_width<Out, In...>(aligned, [&](auto width) {
      constexpr int V = decltype(width)::value;
      dense_map_kernel<V><<<grid_for((n + V - 1) / V), kBlock, 0, s>>>(
          n, fn, o, static_cast<const In*>(in.data_ptr())...);
    });
  } else {
    elementwise_kernel<N><<<grid_for(n), kBlock, 0, s>>>(
        n, ix, StridedMap<Fn, Out, In...>{fn, o, {static_cast<const In*>(in.data_ptr())...}});
  }
  MOEGRAD_CUDA_CHECK_LAUNCH();
}

}  // namespace moegrad::cuda
#endif
