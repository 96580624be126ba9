#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/ops/topk.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::random_tensor;

using testing::error_of;

// A full stable sort of each row (NaN first, then descending): its first k entries.
std::pair<std::vector<double>, std::vector<int64_t>> ref_topk(const Tensor& x, int64_t k) {
  const int64_t n = x.size(-1), rows = x.numel() / n;
  std::vector<double> v = x.to_vector<double>(), vals;
  std::vector<int64_t> idx;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    const double* row = v.data() + r * n;
    std::stable_sort(order.begin(), order.end(), [row](int64_t a, int64_t b) {
      if (std::isnan(row[a]) || std::isnan(row[b])) return std::isnan(row[a]) && !std::isnan(row[b]);
      return row[a] > row[b];
    });
    for (int64_t j = 0; j < k; ++j) {
      vals.push_back(row[order[j]]);
      idx.push_back(order[j]);
    }
  }
  return {vals, idx};
}

void expect_matches_reference(const Tensor& x, int64_t k) {
  auto [values, indices] = topk(x, k);
  Shape shape = x.shape();
  shape.back() = k;
  EXPECT_EQ(values.shape(), shape);
  EXPECT_EQ(indices.dtype(), DType::I64);
  auto [rv, ri] = ref_topk(x, k);
  EXPECT_EQ(indices.to_vector<int64_t>(), ri) << "k = " << k << ", x " << shape_str(x.shape());
  EXPECT_EQ(values.to_vector<double>(), rv) << "k = " << k;
}

TEST(TopK, SortedDescendingTiesToLowerIndex) {
  Tensor x = from_vector<float>({1, 3, 3, 2, 3, -1, 0, 0}, {2, 4});
  auto [values, indices] = topk(x, 3);
  EXPECT_EQ(values.to_vector<float>(), (std::vector<float>{3, 3, 2, 3, 0, 0}));
  EXPECT_EQ(indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 0, 2, 3}));
}

TEST(TopK, NanRanksAboveNumbers) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = from_vector<float>({1, nan, 2, nan, -0.0f, 0.0f}, {6});
  auto [values, indices] = topk(x, 5);
  EXPECT_EQ(indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2, 0, 4}));
  EXPECT_TRUE(std::isnan(values.to_vector<float>()[0]));
}

TEST(TopK, MatchesReferenceForManyK) {
  Tensor x = random_tensor({7, 37}, 1, DType::F32);
  for (int64_t k : {1, 2, 8, 36, 37}) expect_matches_reference(x, k);
  // Many ties: small integers.
  Generator gen(2);
  Tensor ties = randint(0, 4, {5, 3, 16}, gen).to(DType::F64);
  for (int64_t k : {1, 4, 16}) expect_matches_reference(ties, k);
}

// The small-k path (a vectorised bound, then exact comparisons above it) against the full sort,
// over row lengths around its vector width, ties, infinities and NaN.
TEST(TopK, SmallKPathMatchesReferenceWithTiesInfinitiesAndNan) {
  const double inf = std::numeric_limits<double>::infinity();
  const double specials[] = {inf, -inf, std::numeric_limits<double>::quiet_NaN()};
  Generator gen(5);
  for (DType dtype : {DType::F32, DType::F64})
    for (int64_t n : {1, 5, 15, 16, 17, 64, 128, 300})
      for (int mix = 0; mix < 3; ++mix) {
        // mix 0: distinct values; 1: many ties; 2: ties with +-inf and NaN sprinkled in.
        std::vector<double> v = (mix == 0 ? randn({6, n}, gen, DType::F64)
                                          : randint(0, 5, {6, n}, gen).to(DType::F64))
                                    .to_vector<double>();
        if (mix == 2)
          for (size_t i = 0; i < v.size(); i += 7) v[i] = specials[(i / 7) % 3];
        const Tensor x = from_vector<double>(v, {6, n}).to(dtype);
        for (int64_t k : {1, 2, 4, 8, 16, 17}) {
          if (k > n) continue;
          auto [values, indices] = topk(x, k);
          auto [rv, ri] = ref_topk(x, k);
          EXPECT_EQ(indices.to_vector<int64_t>(), ri)
              << dtype_name(dtype) << " n " << n << " mix " << mix << " k " << k;
          const std::vector<double> got = values.to_vector<double>();
          for (size_t i = 0; i < got.size(); ++i)
            EXPECT_TRUE(got[i] == rv[i] || (std::isnan(got[i]) && std::isnan(rv[i]))) << i;
        }
      }
}

TEST(TopK, NonContiguousInput) {
  Tensor x = random_tensor({9, 4, 6}, 3).transpose(0, 2);  // [6, 4, 9]
  expect_matches_reference(x, 3);
}

// bf16 values compare as the f32 values they hold: the same picks as topk of the widened input,
// ties (frequent after rounding) to the lower index, values exact.
TEST(TopKBf16, MatchesF32OnTheSameValues) {
  Tensor x = random_tensor({40, 3, 7}, 4, DType::BF16).permute({1, 2, 0});  // [3, 7, 40]
  for (int64_t k : {2, 9, 40}) {
    auto [v, i] = topk(x, k);
    auto [rv, ri] = topk(x.to(DType::F32), k);
    EXPECT_EQ(v.dtype(), DType::BF16);
    EXPECT_EQ(i.to_vector<int64_t>(), ri.to_vector<int64_t>()) << "k = " << k;
    EXPECT_EQ(v.to_vector<float>(), rv.to_vector<float>()) << "k = " << k;
  }
}

TEST(TopK, EmptyAndErrors) {
  auto [v, i] = topk(zeros({3, 4}), 0);
  EXPECT_EQ(v.shape(), (Shape{3, 0}));
  EXPECT_EQ(i.shape(), (Shape{3, 0}));
  EXPECT_EQ(topk(zeros({0, 4}), 2).first.shape(), (Shape{0, 2}));
  EXPECT_EQ(error_of([] { topk(zeros({3, 4}), 5); }),
            "topk: k = 5 out of range [0, 4] for the last dim of shape [3, 4]");
  EXPECT_EQ(error_of([] { topk(scalar_tensor(1.0), 1); }),
            "topk: expected at least one dim, got a 0-d tensor");
  EXPECT_EQ(error_of([] { topk(zeros({4}, DType::I64), 1); }),
            "topk: expected a float32, float64 or bfloat16 tensor, got int64");
}

}  // namespace
}  // namespace moegrad
