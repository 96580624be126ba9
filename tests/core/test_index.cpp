#include <algorithm>
#include <functional>

#include "core/ops/index.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::error_of;

Shape unravel(int64_t i, const Shape& shape) {
  Shape c(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    c[d] = i % shape[d];
    i /= shape[d];
  }
  return c;
}

int64_t ravel(const Shape& c, const Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + c[d];
  return i;
}

// Naive references on logical (row-major) values, whatever the inputs' strides.
Tensor ref_index_select(const Tensor& x, int64_t d, const Tensor& idx) {
  std::vector<double> xv = x.to_vector<double>();
  std::vector<int64_t> iv = idx.to_vector<int64_t>();
  Shape shape = x.shape();
  shape[d] = idx.numel();
  std::vector<double> out(shape_numel(shape));
  for (int64_t i = 0; i < int64_t(out.size()); ++i) {
    Shape c = unravel(i, shape);
    c[d] = iv[c[d]];
    out[i] = xv[ravel(c, x.shape())];
  }
  return from_vector(out, shape);
}

Tensor ref_gather(const Tensor& x, int64_t d, const Tensor& idx) {
  std::vector<double> xv = x.to_vector<double>();
  std::vector<int64_t> iv = idx.to_vector<int64_t>();
  std::vector<double> out(idx.numel());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    Shape c = unravel(i, idx.shape());
    c[d] = iv[i];
    out[i] = xv[ravel(c, x.shape())];
  }
  return from_vector(out, idx.shape());
}

Tensor ref_index_add(const Tensor& x, int64_t d, const Tensor& idx, const Tensor& src) {
  std::vector<double> out = x.to_vector<double>(), sv = src.to_vector<double>();
  std::vector<int64_t> iv = idx.to_vector<int64_t>();
  for (int64_t i = 0; i < src.numel(); ++i) {
    Shape c = unravel(i, src.shape());
    c[d] = iv[c[d]];
    out[ravel(c, x.shape())] += sv[i];
  }
  return from_vector(out, x.shape());
}

Tensor ref_scatter_add(const Tensor& x, int64_t d, const Tensor& idx, const Tensor& src) {
  std::vector<double> out = x.to_vector<double>(), sv = src.to_vector<double>();
  std::vector<int64_t> iv = idx.to_vector<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i) {
    Shape c = unravel(i, idx.shape());
    c[d] = iv[i];
    out[ravel(c, x.shape())] += sv[i];
  }
  return from_vector(out, x.shape());
}

// Random indices in [0, high) of `shape`, in `dtype`.
Tensor random_index(const Shape& shape, int64_t high, uint64_t seed, DType dtype) {
  Generator gen(seed);
  return randint(0, high, shape, gen, dtype);
}

TEST(Index, IndexSelectHandExample) {
  Tensor x = from_vector<double>({0, 1, 2, 10, 11, 12, 20, 21, 22}, {3, 3});
  Tensor idx = from_vector<int64_t>({2, 0, 2}, {3});
  EXPECT_EQ(index_select(x, 0, idx).to_vector<double>(),
            (std::vector<double>{20, 21, 22, 0, 1, 2, 20, 21, 22}));
  EXPECT_EQ(index_select(x, -1, idx.to(DType::I32)).to_vector<double>(),
            (std::vector<double>{2, 0, 2, 12, 10, 12, 22, 20, 22}));
}

TEST(Index, IndexSelectMatchesReferenceOnStridedInputs) {
  Tensor x = random_tensor({5, 4, 3}, 1).permute({2, 0, 1});  // [3, 5, 4], not contiguous
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t d = 0; d < 3; ++d) {
      // Every other element of a longer index tensor: a strided idx with duplicates.
      Tensor idx = random_index({14}, x.size(d), 10 + d, it).narrow(0, 1, 7);
      idx = idx.as_strided({4}, {2}, idx.offset());
      EXPECT_ALL_CLOSE(index_select(x, d, idx), ref_index_select(x, d, idx), 0, 0);
    }
  }
  Tensor empty_idx = zeros({0}, DType::I64);
  EXPECT_EQ(index_select(x, 1, empty_idx).shape(), (Shape{3, 0, 4}));
}

TEST(Index, IndexSelectKeepsDtypes) {
  Tensor x = from_vector<int64_t>({5, 6, 7}, {3});
  EXPECT_EQ(index_select(x, 0, from_vector<int32_t>({2, 2, 0}, {3})).to_vector<int64_t>(),
            (std::vector<int64_t>{7, 7, 5}));
}

TEST(Index, GatherMatchesReference) {
  Tensor x = random_tensor({4, 5, 3}, 2);
  Tensor xt = random_tensor({3, 5, 4}, 3).permute({2, 1, 0});  // [4, 5, 3], not contiguous
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t d = 0; d < 3; ++d) {
      // Smaller than x off dim, longer than x along it: both are allowed.
      Shape s{3, 4, 2};
      s[d] = 7;
      Tensor idx = random_index(s, x.size(d), 20 + d, it);
      EXPECT_ALL_CLOSE(gather(x, d, idx), ref_gather(x, d, idx), 0, 0);
      Tensor idx_t = idx.transpose(0, 2).contiguous().transpose(0, 2);  // strided idx
      EXPECT_ALL_CLOSE(gather(xt, d, idx_t), ref_gather(xt, d, idx_t), 0, 0);
    }
  }
}

TEST(Index, IndexAddAccumulatesDuplicates) {
  Tensor x = from_vector<double>({1, 1, 1, 1, 1, 1}, {3, 2});
  Tensor src = from_vector<double>({1, 2, 10, 20, 100, 200, 1000, 2000}, {4, 2});
  Tensor idx = from_vector<int32_t>({2, 0, 2, 2}, {4});
  EXPECT_EQ(index_add(x, 0, idx, src).to_vector<double>(),
            (std::vector<double>{11, 21, 1, 1, 1102, 2203}));
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>(6, 1.0)));  // x is not modified
}

TEST(Index, IndexAddMatchesReferenceOnStridedInputs) {
  Tensor x = random_tensor({4, 3, 5}, 4).transpose(0, 2);  // [5, 3, 4]
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t d = 0; d < 3; ++d) {
      Tensor idx = random_index({9}, x.size(d), 30 + d, it);
      Shape s = x.shape();
      s[d] = 9;
      Tensor src = random_tensor({s[2], s[1], s[0]}, 40 + d).permute({2, 1, 0});
      EXPECT_ALL_CLOSE(index_add(x, d, idx, src), ref_index_add(x, d, idx, src), 1e-12, 1e-12);
    }
  }
}

// The same kernel from zeros, without a zeros tensor to copy: bit-identical to index_add onto
// zeros in f32 and bf16 (summed in f32, rounded once), rows no index names 0, on any dim.
TEST(Index, IndexAddToZerosIsIndexAddOntoZeros) {
  for (DType dt : {DType::F32, DType::BF16}) {
    for (int64_t d = 0; d < 3; ++d) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " dim " << d);
      Shape shape{5, 3, 4}, s = shape;
      s[d] = 17;
      Tensor idx = random_index({17}, shape[size_t(d)] - 1, 110 + d, DType::I64);  // last unnamed
      Tensor src = random_tensor({s[2], s[1], s[0]}, 120 + d, dt).permute({2, 1, 0});
      Tensor got = index_add_to_zeros(shape, d, idx, src);
      EXPECT_EQ(got.dtype(), dt);
      EXPECT_ALL_CLOSE(got, index_add(zeros(shape, dt), d, idx, src), 0, 0);
      EXPECT_EQ(got.narrow(d, shape[size_t(d)] - 1, 1).to_vector<double>(),
                std::vector<double>(size_t(60 / shape[size_t(d)]), 0.0));
    }
  }
  EXPECT_EQ(error_of([&] {
              index_add_to_zeros({5, 3}, 0, from_vector<int64_t>({1, 2}, {2}), zeros({3, 3}));
            }),
            "index_add: source shape [3, 3] must be [2, 3] (input shape [5, 3] with the index's 2 "
            "entries along dim 0)");
  EXPECT_EQ(error_of([&] {
              index_add_to_zeros({5, 3}, 0, from_vector<int64_t>({5}, {1}), zeros({1, 3}));
            }),
            "index_add: index 5 out of range [0, 5) for dim 0 of input shape [5, 3]");
}

TEST(Index, IndexAddOverManyRowsInParallelAddsInIndexOrder) {
  // Big enough for the OpenMP path, with many duplicates per row: each element gets the bits of
  // f32 additions one at a time in index order.
  Tensor x = random_tensor({7, 300}, 5, DType::F32);
  Tensor idx = random_index({200}, 7, 6, DType::I64);
  Tensor src = random_tensor({200, 300}, 7, DType::F32);
  std::vector<float> want = x.to_vector<float>();
  const std::vector<float> rows = src.to_vector<float>();
  const std::vector<int64_t> at = idx.to_vector<int64_t>();
  for (size_t j = 0; j < at.size(); ++j)
    for (size_t h = 0; h < 300; ++h) want[size_t(at[j]) * 300 + h] += rows[j * 300 + h];
  EXPECT_EQ(index_add(x, 0, idx, src).to_vector<float>(), want);
  EXPECT_ALL_CLOSE(index_add(x, 0, idx, src), ref_index_add(x, 0, idx, src), 1e-4, 1e-5);
}

TEST(Index, ScatterAddAccumulatesDuplicates) {
  Tensor x = zeros({2, 3}, DType::F64);
  Tensor idx = from_vector<int64_t>({0, 2, 0, 0, 1, 1, 1, 1}, {2, 4});
  Tensor src = from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  EXPECT_EQ(scatter_add(x, 1, idx, src).to_vector<double>(),
            (std::vector<double>{8, 0, 2, 0, 26, 0}));
}

TEST(Index, ScatterAddMatchesReferenceOnStridedInputs) {
  Tensor x = random_tensor({3, 4, 5}, 8).permute({1, 2, 0});  // [4, 5, 3]
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t d = 0; d < 3; ++d) {
      Shape s{3, 4, 2};
      s[d] = 6;
      Tensor idx = random_index(s, x.size(d), 50 + d, it).transpose(0, 1).contiguous().transpose(0, 1);
      Tensor src = random_tensor({s[2], s[1], s[0]}, 60 + d).permute({2, 1, 0});
      EXPECT_ALL_CLOSE(scatter_add(x, d, idx, src), ref_scatter_add(x, d, idx, src), 1e-12, 1e-12);
    }
  }
}

TEST(Index, ScatterAddCountsIntegers) {
  // A bincount: the tokens each expert receives.
  Tensor expert = from_vector<int32_t>({3, 0, 3, 1, 3}, {5});
  Tensor counts = scatter_add(zeros({4}, DType::I64), 0, expert, ones({5}, DType::I64));
  EXPECT_EQ(counts.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 3}));
}

TEST(Index, OneHot) {
  Tensor idx = from_vector<int32_t>({2, 0, 1, 2}, {2, 2});
  Tensor oh = one_hot(idx, 3);
  EXPECT_EQ(oh.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(oh.dtype(), DType::I64);
  EXPECT_EQ(oh.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}));
  Tensor f = one_hot(scalar_tensor(1, DType::I64), 2, DType::F32);
  EXPECT_EQ(f.shape(), (Shape{2}));
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{0, 1}));
}

TEST(Index, Bf16SelectAndGatherCopyValues) {
  Tensor x = random_tensor({5, 4, 3}, 70, DType::BF16).permute({2, 0, 1});  // [3, 5, 4]
  for (int64_t d = 0; d < 3; ++d) {
    Tensor idx = random_index({7}, x.size(d), 71 + d, DType::I32);
    Tensor sel = index_select(x, d, idx);
    EXPECT_EQ(sel.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(sel, ref_index_select(x, d, idx), 0, 0);
    Shape s{2, 3, 3};
    s[d] = 5;
    Tensor gidx = random_index(s, x.size(d), 74 + d, DType::I64);
    EXPECT_ALL_CLOSE(gather(x, d, gidx), ref_gather(x, d, gidx), 0, 0);
  }
  Tensor oh = one_hot(from_vector<int64_t>({1, 0}, {2}), 2, DType::BF16);
  EXPECT_EQ(oh.dtype(), DType::BF16);
  EXPECT_EQ(oh.to_vector<float>(), (std::vector<float>{0, 1, 1, 0}));
}

// bf16 index_add sums each output element in f32, in index order from x, and rounds once:
// the f32 index_add of the same values, rounded.
TEST(Index, Bf16IndexAddIsTheF32SumRoundedOnce) {
  Tensor x = random_tensor({4, 3, 5}, 80, DType::BF16).transpose(0, 2);  // [5, 3, 4]
  for (int64_t d = 0; d < 3; ++d) {
    Tensor idx = random_index({23}, x.size(d), 81 + d, DType::I64);  // many duplicates
    Shape s = x.shape();
    s[d] = 23;
    Tensor src = random_tensor({s[2], s[1], s[0]}, 84 + d, DType::BF16).permute({2, 1, 0});
    Tensor got = index_add(x, d, idx, src);
    Tensor want = index_add(x.to(DType::F32), d, idx, src.to(DType::F32));
    EXPECT_EQ(got.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(got, want.to(DType::BF16), 0, 0);
    EXPECT_ALL_CLOSE(got.to(DType::F32), ref_index_add(x, d, idx, src), 1e-2, 1e-2);
  }
  // 300 additions of 2^-9 into 1: each would round away in bf16 (a quarter of its spacing at
  // 1), their f32 sum does not.
  Tensor one = ones({1, 2}, DType::BF16);
  Tensor tiny = full({300, 2}, 1.0 / 512, DType::BF16);
  Tensor sum = index_add(one, 0, zeros({300}, DType::I64), tiny);
  EXPECT_EQ(sum.to_vector<float>(), (std::vector<float>{1.5859375f, 1.5859375f}));
}

TEST(Index, Bf16ScatterAdd) {
  Tensor x = random_tensor({3, 4, 5}, 90, DType::BF16).permute({1, 2, 0});  // [4, 5, 3]
  for (int64_t d = 0; d < 3; ++d) {
    Shape s{3, 4, 2};
    s[d] = 6;
    Tensor idx = random_index(s, x.size(d), 91 + d, DType::I32);
    Tensor src = random_tensor({s[2], s[1], s[0]}, 94 + d, DType::BF16).permute({2, 1, 0});
    Tensor got = scatter_add(x, d, idx, src);
    EXPECT_EQ(got.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(got.to(DType::F32), ref_scatter_add(x, d, idx, src), 2e-2, 1e-2);
  }
}

// The order a stable sort by value gives, from std::stable_sort over the positions.
std::vector<int32_t> ref_stable_order(const std::vector<int64_t>& values) {
  std::vector<int32_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return values[size_t(a)] < values[size_t(b)]; });
  return order;
}

TEST(Index, GroupByIndexHandExample) {
  // Three tokens' top-2 experts out of 4; expert 2 receives nothing.
  const Tensor idx = from_vector<int64_t>({3, 0, 0, 1, 3, 1}, {3, 2});
  const IndexGroups g = group_by_index(idx, 4, "experts");
  EXPECT_EQ(g.order.dtype(), DType::I32);
  EXPECT_EQ(g.order.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3, 5, 0, 4}));
  EXPECT_EQ(g.row.to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 1, 2, 0, 2}));
  EXPECT_EQ(g.start, (std::vector<int64_t>{0, 2, 4, 4, 6}));
}

TEST(Index, GroupByIndexIsAStableSortByValue) {
  for (DType it : {DType::I32, DType::I64}) {
    for (int64_t groups : {1, 5, 64, 1000}) {
      const Tensor idx = testing::skewed_index({997, 8}, groups, uint64_t(groups), it);
      const std::vector<int64_t> v = idx.to_vector<int64_t>();
      const IndexGroups g = group_by_index(idx, groups, "groups");
      const std::vector<int32_t> order = g.order.to_vector<int32_t>();
      EXPECT_EQ(order, ref_stable_order(v)) << groups;
      std::vector<int32_t> row;
      for (int32_t p : order) row.push_back(p / 8);
      EXPECT_EQ(g.row.to_vector<int32_t>(), row);
      ASSERT_EQ(g.start.size(), size_t(groups) + 1);
      for (int64_t e = 0; e <= groups; ++e)
        EXPECT_EQ(g.start[size_t(e)],
                  std::count_if(v.begin(), v.end(), [&](int64_t x) { return x < e; }));
    }
  }
}

TEST(Index, GroupByIndexChecksItsInput) {
  const IndexGroups empty_groups = group_by_index(zeros({0, 4}, DType::I64), 3, "experts");
  EXPECT_EQ(empty_groups.order.numel(), 0);
  EXPECT_EQ(empty_groups.start, (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(error_of([&] {
              group_by_index(from_vector<int64_t>({0, 4}, {1, 2}), 4, "experts");
            }),
            "group_by_index: index 4 out of range [0, 4) for experts");
  EXPECT_EQ(error_of([&] {
              group_by_index(from_vector<int32_t>({-3, 9}, {2, 1}), 4, "experts");
            }),
            "group_by_index: index -3 out of range [0, 4) for experts");
  EXPECT_EQ(error_of([&] { group_by_index(zeros({4}, DType::I64), 4, "experts"); }),
            "group_by_index: expected a 2-d index tensor [N, k], got shape [4]");
  EXPECT_EQ(error_of([&] {
              group_by_index(zeros({2, 2}), 4, "experts");
            }),
            "group_by_index: expected an int32 or int64 index tensor, got float32");
  EXPECT_EQ(error_of([&] {
              group_by_index(zeros({2, 2}, DType::I64), 0, "experts");
            }),
            "group_by_index: groups must lie in [1, 2^31 - 1), got 0");
}

TEST(Index, GroupByIndexOnDeviceLeavesTheStartsAsATensor) {
  for (int64_t groups : {1, 5, 64}) {
    const Tensor idx = testing::skewed_index({301, 8}, groups, uint64_t(groups) + 3, DType::I32);
    const IndexGroups host = group_by_index(idx, groups, "experts");
    const DeviceIndexGroups dev = group_by_index_on_device(idx, groups, "experts");
    EXPECT_EQ(dev.order.to_vector<int32_t>(), host.order.to_vector<int32_t>());
    EXPECT_EQ(dev.row.to_vector<int32_t>(), host.row.to_vector<int32_t>());
    EXPECT_EQ(dev.start.dtype(), DType::I64);
    EXPECT_EQ(dev.start.to_vector<int64_t>(), host.start);
    EXPECT_EQ(dev.host_start(), host.start);
  }
  const DeviceIndexGroups none = group_by_index_on_device(zeros({0, 2}, DType::I64), 2, "experts");
  EXPECT_EQ(none.host_start(), (std::vector<int64_t>{0, 0, 0}));
  // The CPU has the values at once, so it checks them at once.
  EXPECT_EQ(error_of([&] {
              group_by_index_on_device(from_vector<int64_t>({0, 7}, {1, 2}), 4, "experts");
            }),
            "group_by_index: index 7 out of range [0, 4) for experts");
}

TEST(Index, BadIndicesNameOpValueAndRange) {
  Tensor x = zeros({5, 3}, DType::F64);
  Tensor bad = from_vector<int64_t>({1, 5, 0}, {3});
  EXPECT_EQ(error_of([&] { index_select(x, 0, bad); }),
            "index_select: index 5 out of range [0, 5) for dim 0 of input shape [5, 3]");
  Tensor neg = from_vector<int32_t>({0, -1}, {2});
  EXPECT_EQ(error_of([&] { index_select(x, 1, neg); }),
            "index_select: index -1 out of range [0, 3) for dim 1 of input shape [5, 3]");
  EXPECT_EQ(error_of([&] { gather(x, 1, from_vector<int64_t>({3}, {1, 1})); }),
            "gather: index 3 out of range [0, 3) for dim 1 of input shape [5, 3]");
  EXPECT_EQ(error_of([&] { index_add(x, 0, bad, zeros({3, 3}, DType::F64)); }),
            "index_add: index 5 out of range [0, 5) for dim 0 of input shape [5, 3]");
  EXPECT_EQ(error_of([&] { scatter_add(x, 0, bad.view({3, 1}), zeros({3, 1}, DType::F64)); }),
            "scatter_add: index 5 out of range [0, 5) for dim 0 of input shape [5, 3]");
  EXPECT_EQ(error_of([&] { one_hot(bad, 4); }), "one_hot: index 5 out of range [0, 4) for 4 classes");
}

// Trusted indices give the checked result; the index dtype is still checked.
TEST(Index, TrustedIndicesSkipOnlyTheRangeCheck) {
  const Tensor x = random_tensor({5, 3}, 40), rows = random_tensor({4, 3}, 41);
  const Tensor idx = from_vector<int64_t>({4, 0, 4, 2}, {4});
  const Tensor idx2 = from_vector<int64_t>({2, 0, 1, 1, 0, 2}, {2, 3});
  constexpr IndexBounds kTrusted = IndexBounds::Trusted;
  EXPECT_ALL_CLOSE(index_select(x, 0, idx, kTrusted), index_select(x, 0, idx), 0, 0);
  EXPECT_ALL_CLOSE(index_add(x, 0, idx, rows, kTrusted), index_add(x, 0, idx, rows), 0, 0);
  EXPECT_ALL_CLOSE(gather(x, 1, idx2, kTrusted), gather(x, 1, idx2), 0, 0);
  const Tensor src = random_tensor({2, 3}, 42);
  EXPECT_ALL_CLOSE(scatter_add(x, 1, idx2, src, kTrusted), scatter_add(x, 1, idx2, src), 0, 0);
  EXPECT_EQ(one_hot(idx2, 3, DType::I64, kTrusted).to_vector<int64_t>(),
            one_hot(idx2, 3).to_vector<int64_t>());
  EXPECT_EQ(error_of([&] { index_select(x, 0, idx.to(DType::F32), kTrusted); }),
            "index_select: expected an int32 or int64 index tensor, got float32");
}

TEST(Index, BadShapesDimsAndDtypes) {
  Tensor x = zeros({5, 3}, DType::F64);
  Tensor idx = from_vector<int64_t>({1, 2}, {2});
  EXPECT_EQ(error_of([&] { index_select(x, 0, idx.to(DType::F32)); }),
            "index_select: expected an int32 or int64 index tensor, got float32");
  EXPECT_EQ(error_of([&] { index_select(x, 0, idx.view({1, 2})); }),
            "index_select: expected a 1-d index tensor, got shape [1, 2]");
  EXPECT_NE(error_of([&] { index_select(x, 2, idx); }).find("index_select"), std::string::npos);
  EXPECT_EQ(error_of([&] { gather(x, 0, idx); }),
            "gather: index shape [2] must have the rank of input shape [5, 3]");
  EXPECT_EQ(error_of([&] { gather(x, 0, zeros({1, 4}, DType::I64)); }),
            "gather: index shape [1, 4] exceeds input shape [5, 3] in dim 1");
  EXPECT_EQ(error_of([&] { index_add(x, 0, idx, zeros({3, 3}, DType::F64)); }),
            "index_add: source shape [3, 3] must be [2, 3] (input shape [5, 3] with the index's 2 "
            "entries along dim 0)");
  EXPECT_EQ(error_of([&] { scatter_add(x, 0, idx.view({2, 1}), zeros({2, 2}, DType::F64)); }),
            "scatter_add: source shape [2, 2] differs from index shape [2, 1]");
  EXPECT_EQ(error_of([&] { index_add(x.to(DType::Bool), 0, idx, zeros({2, 3}, DType::Bool)); }),
            "index_add: expected a float32, float64, bfloat16, int32 or int64 input, got bool");
  EXPECT_EQ(error_of([&] { index_add(x.to(DType::BF16), 0, idx, zeros({2, 3})); }),
            "index_add: expected tensors of the same dtype, got bfloat16 [5, 3] and float32 "
            "[2, 3]");
}

}  // namespace
}  // namespace moegrad
