#include <cuda_runtime.h>

#include "core/cuda/rounding.cuh"
#include "core/cuda/strided.cuh"
#include "core/ops/rope.h"

namespace moegrad::cuda {
namespace {

// One thread per V rotated pairs (x[..., t, i + e], x[..., t, i + e + D/2]) for e < V, each
// operand moved in vectors of V (16 bytes of T when the rows allow, else V = 1). Operand
// offsets: 0 the first low element of x, 1 that of out, 2 the (t, i) entry of the tables.
template <int V, typename T, typename C = compute_t<T>>
struct RotatePairs {
  T* out;
  const T* x;
  const C* cos;  // the tables are in the compute type: f32 for bf16 x
  const C* sin;
  int64_t x_half;    // from a low element of x to its high partner
  int64_t out_half;  // the same in out
  C sign;            // -1 rotates by -a

  // V entries of a table: 16 bytes a load (two for 8 f32 entries of a bf16 x).
  __device__ static Vector<C, V> load_table(const C* p) {
    constexpr int kPart = V < kVectorWidth<C> ? V : kVectorWidth<C>;
    Vector<C, V> v;
MOEGRAD_UNROLL
    for (int k = 0; k < V; k += kPart) {
      const Vector<C, kPart> part = load_vector<kPart>(p + k);
MOEGRAD_UNROLL
      for (int e = 0; e < kPart; ++e) v.v[k + e] = part.v[e];
    }
    return v;
  }

  __device__ void operator()(const int64_t* off) const {
    const Vector<T, V> lo = load_vector<V>(x + off[0]), hi = load_vector<V>(x + off[0] + x_half);
    const Vector<C, V> c = load_table(cos + off[2]), s = load_table(sin + off[2]);
    Vector<T, V> out_lo, out_hi;
MOEGRAD_UNROLL
    for (int e = 0; e < V; ++e) {
      const C l = C(lo.v[e]), h = C(hi.v[e]), se = sign * s.v[e];
      out_lo.v[e] = T(mul_rn(l, c.v[e]) - mul_rn(h, se));
      out_hi.v[e] = T(mul_rn(h, c.v[e]) + mul_rn(l, se));
    }
    store_vector<V>(out + off[1], out_lo);
    store_vector<V>(out + off[1] + out_half, out_hi);
  }
};

}  // namespace

void rope(const Tensor& out, const Tensor& x, const Tensor& cos, const Tensor& sin, bool inverse) {
  const int64_t half = x.size(-1) / 2;
  dispatch_compute(x.dtype(), "rope", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    // Vectors when both halves of every row of x and out are whole aligned vectors (rows of
    // unit stride: rows_split's rule), and the tables' rows too.
    const bool split = rows_split<T>(half, {&x, &out}) &&
                       vector_aligned(kVectorWidth<C>, {{cos.data_ptr(), sizeof(C)},
                                                        {sin.data_ptr(), sizeof(C)}});
    with_vector_width<T>(split, [&](auto width) {
      constexpr int V = decltype(width)::value;
      // The pairs' vectors: x's shape with the last dim halved then cut in vectors; the tables
      // broadcast over the leading dims.
      Shape pairs = x.shape(), x_strides = x.strides(), out_strides = out.strides();
      pairs.back() = half / V;
      x_strides.back() *= V;
      out_strides.back() *= V;
      Shape table_strides(pairs.size(), 0);
      table_strides[pairs.size() - 2] = half;
      table_strides.back() = V;
      launch_elementwise<3>(pairs, {x_strides, out_strides, table_strides}, x.device().index,
                            RotatePairs<V, T>{out.data<T>(), x.data<T>(), cos.data<C>(),
                                              sin.data<C>(), half * x.stride(-1),
                                              half * out.stride(-1), inverse ? C(-1) : C(1)});
    });
  });
}

}  // namespace moegrad::cuda
