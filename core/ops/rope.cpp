#include "core/ops/rope.h"

#include <cmath>
#include <deque>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "core/ops/dispatch.h"
#include "core/storage.h"

namespace moegrad {
namespace {

std::vector<int64_t> position_values(int64_t T, const Tensor& positions, const char* op) {
  if (!positions.defined()) {
    std::vector<int64_t> p(size_t(T), 0);
    for (int64_t t = 0; t < T; ++t) p[size_t(t)] = t;
    return p;
  }
  MOEGRAD_CHECK(positions.dim() == 1 && positions.size(0) == T, op,
                ": expected positions of shape [", T, "], got ", shape_str(positions.shape()));
  return dispatch_index(positions.dtype(), op, [&](auto tag) {
    using I = typename decltype(tag)::type;
    std::vector<int64_t> p;
    for (I v : positions.to_vector<I>()) p.push_back(int64_t(v));
    return p;
  });
}

// The tables of the default positions 0..T-1 by (T, D, theta, dtype, device): a model rotates
// with the same ones in every layer, forward and backward, and each costs T * D / 2 sines and
// cosines on the host (on a GPU, and an upload). The last kCached stay; they are small, and
// never destroyed: device memory must not be freed after the runtime has shut down at exit.
RopeTables default_tables(int64_t T, int64_t D, double theta, DType dtype, Device device) {
  using Key = std::tuple<int64_t, int64_t, double, DType, DeviceType, int>;
  constexpr size_t kCached = 8;
  static std::mutex mutex;
  static auto* cache = new std::deque<std::pair<Key, RopeTables>>();
  const Key key{T, D, theta, dtype, device.type, device.index};
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& [k, tables] : *cache)
    if (k == key) return tables;
  RopeTables host = rope_tables(T, D, theta, Tensor(), dtype);
  if (cache->size() == kCached) cache->pop_front();
  cache->emplace_back(key, RopeTables{host.cos.to(device), host.sin.to(device)});
  return cache->back().second;
}

Tensor apply(const char* op, const Tensor& x, double theta, const Tensor& positions, bool inverse) {
  check_defined(op, x, "input");
  MOEGRAD_CHECK(x.dim() >= 2 && x.size(-1) % 2 == 0, op,
                ": expected input [..., T, D] with D even, got ", shape_str(x.shape()));
  MOEGRAD_CHECK(theta > 0, op, ": theta must be positive, got ", theta);
  // Laid out as x is: the attention's transposed heads view back without a copy.
  Tensor out = empty_like_layout(x);
  const MemoryCategoryScope workspace(MemoryCategory::Workspace);  // the tables
  // bf16 inputs rotate by f32 tables: their angles are as exact as f32 training's.
  const DType table_dtype = x.dtype() == DType::BF16 ? DType::F32 : x.dtype();
  // The tables come from the host (the rounding HF does); a GPU gets a copy of the same bits.
  RopeTables tab = positions.defined()
                       ? rope_tables(x.size(-2), x.size(-1), theta, positions, table_dtype)
                       : default_tables(x.size(-2), x.size(-1), theta, table_dtype, x.device());
  MOEGRAD_DISPATCH(x.device(), op, rope, out, x, tab.cos.to(x.device()), tab.sin.to(x.device()),
                   inverse);
  return out;
}

}  // namespace

RopeTables rope_tables(int64_t T, int64_t D, double theta, const Tensor& positions, DType dtype) {
  const int64_t half = D / 2;
  std::vector<int64_t> pos = position_values(T, positions, "rope");
  // HF: inv_freq = 1.0 / (base ** (arange(0, D, 2).float() / D)) in f32, and
  // freqs = inv_freq.float() @ position_ids.float(), an f32 product.
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = float(2 * i) / float(D);
    inv_freq[size_t(i)] = 1.0f / float(std::pow(double(float(theta)), double(exponent)));
  }
  std::vector<double> c(size_t(T * half)), s(size_t(T * half));
  // A sin and a cos cost tens of ns: worth threads from a few thousand entries.
#pragma omp parallel for schedule(static) if (T * half >= 4096)
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(float(pos[size_t(t)]) * inv_freq[size_t(i)]);
      c[size_t(t * half + i)] = std::cos(angle);
      s[size_t(t * half + i)] = std::sin(angle);
    }
  }
  return {from_vector(c, {T, half}).to(dtype), from_vector(s, {T, half}).to(dtype)};
}

Tensor rope(const Tensor& x, double theta, const Tensor& positions) {
  return apply("rope", x, theta, positions, false);
}

Tensor rope_backward(const Tensor& grad, double theta, const Tensor& positions) {
  return apply("rope_backward", grad, theta, positions, true);
}

}  // namespace moegrad
