#include <algorithm>

#include "core/ops/copy.h"
#include "core/ops/cpu_loop.h"

namespace moegrad::cpu {
namespace {

constexpr int64_t kTile = 32;

// The dim along which `t` is dense (stride 1, size > 1), or -1.
int64_t unit_stride_dim(const Tensor& t) {
  for (int64_t d = t.dim() - 1; d >= 0; --d)
    if (t.stride(d) == 1 && t.size(d) > 1) return d;
  return -1;
}

// A transposing copy (dst dense along dim b, src dense along another dim a) read row by row
// would touch a new cache line for every element of src; square tiles keep both sides in cache.
template <typename D, typename S>
void copy_tiled(const Tensor& dst, const Tensor& src, int64_t a, int64_t b) {
  Shape outer_shape, dst_outer, src_outer;
  for (int64_t d = 0; d < dst.dim(); ++d) {
    if (d == a || d == b) continue;
    outer_shape.push_back(dst.size(d));
    dst_outer.push_back(dst.stride(d));
    src_outer.push_back(src.stride(d));
  }
  const int64_t na = dst.size(a), nb = dst.size(b);
  const int64_t dsa = dst.stride(a), ssb = src.stride(b);
  D* d0 = static_cast<D*>(dst.data_ptr());
  const S* s0 = static_cast<const S*>(src.data_ptr());
  const int64_t tiles_a = (na + kTile - 1) / kTile;
  auto copy_plane = [&](D* dp, const S* sp) {
#pragma omp parallel for schedule(static) if (na * nb >= kParallelGrain)
    for (int64_t ta = 0; ta < tiles_a; ++ta) {
      int64_t a_end = std::min(na, (ta + 1) * kTile);
      for (int64_t jb = 0; jb < nb; jb += kTile) {
        int64_t b_end = std::min(nb, jb + kTile);
        for (int64_t i = ta * kTile; i < a_end; ++i)
          for (int64_t j = jb; j < b_end; ++j) dp[i * dsa + j] = convert_value<D>(sp[i + j * ssb]);
      }
    }
  };
  strided_loop<2>(outer_shape, {dst_outer, src_outer},
                  [&](int64_t n, const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st) {
                    for (int64_t r = 0; r < n; ++r) copy_plane(d0 + off[0] + r * st[0], s0 + off[1] + r * st[1]);
                  });
}

}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  const int64_t b = unit_stride_dim(dst), a = unit_stride_dim(src);
  const bool transposing = a >= 0 && b >= 0 && a != b && dst.size(a) >= kTile && dst.size(b) >= kTile;
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    dispatch_all(src.dtype(), [&](auto stag) {
      using S = typename decltype(stag)::type;
      if (transposing) return copy_tiled<D, S>(dst, src, a, b);
      D* d = static_cast<D*>(dst.data_ptr());
      const S* s = static_cast<const S*>(src.data_ptr());
      strided_loop<2>(dst.shape(), {dst.strides(), src.strides()},
                      [&](int64_t n, const std::array<int64_t, 2>& off,
                          const std::array<int64_t, 2>& st) {
                        D* dp = d + off[0];
                        const S* sp = s + off[1];
                        if (st[0] == 1 && st[1] == 1) {
                          for (int64_t i = 0; i < n; ++i) dp[i] = convert_value<D>(sp[i]);
                        } else {
                          for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = convert_value<D>(sp[i * st[1]]);
                        }
                      });
    });
  });
}

void fill_into(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto dt) {
    using D = typename decltype(dt)::type;
    D v = convert_value<D>(value);
    D* d = static_cast<D*>(dst.data_ptr());
    strided_loop<1>(dst.shape(), {dst.strides()},
                    [&](int64_t n, const std::array<int64_t, 1>& off,
                        const std::array<int64_t, 1>& st) {
                      for (int64_t i = 0; i < n; ++i) d[off[0] + i * st[0]] = v;
                    });
  });
}

}  // namespace moegrad::cpu
