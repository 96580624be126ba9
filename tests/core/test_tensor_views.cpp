#include "core/tensor.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(TensorViews, WriteThroughTransposeIsVisibleInBase) {
  Tensor base = arange(6, DType::F32).view({2, 3});
  Tensor t = base.transpose(0, 1);
  EXPECT_TRUE(t.shares_storage(base));
  EXPECT_FALSE(t.is_contiguous());
  t.select(0, 2).select(0, 1).fill_(42.0);  // t[2][1] is base[1][2]
  EXPECT_EQ(base.to_vector<float>()[5], 42.0f);
}

TEST(TensorViews, ContiguousCopiesOnlyWhenNeeded) {
  Tensor base = arange(6, DType::F32).view({2, 3});
  EXPECT_TRUE(base.contiguous().shares_storage(base));
  Tensor t = base.t().contiguous();
  EXPECT_FALSE(t.shares_storage(base));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

TEST(TensorViews, NarrowSelectExpandPermuteShareStorage) {
  Tensor base = arange(24, DType::F32).view({2, 3, 4});
  Tensor n = base.narrow(2, 1, 2);
  EXPECT_EQ(n.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(n.to_vector<float>()[0], 1.0f);
  Tensor s = base.select(1, 2);  // [2, 4]: base[:, 2, :]
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  Tensor p = base.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.contiguous().to_vector<float>()[1], 4.0f);  // p[0][0][1] = base[0][1][0]
  Tensor e = base.select(0, 0).select(0, 0).view({1, 4}).expand({3, 4});
  EXPECT_EQ(e.stride(0), 0);
  for (const Tensor& v : {n, s, p, e}) EXPECT_TRUE(v.shares_storage(base));
  // Writes through each view land in the base.
  n.fill_(-1.0);
  EXPECT_EQ(base.to_vector<float>()[1], -1.0f);
  EXPECT_EQ(base.to_vector<float>()[0], 0.0f);
}

// A [B, T, H, D] tensor seen as [B, H, T, D] gives a result laid out as [B, T, H, D], which
// views back without a copy; contiguous and broadcast inputs give contiguous results.
TEST(TensorViews, EmptyLikeLayoutFollowsTheStrides) {
  Tensor heads = zeros({2, 5, 3, 4}).transpose(1, 2);
  Tensor out = empty_like_layout(heads);
  EXPECT_EQ(out.shape(), heads.shape());
  EXPECT_EQ(out.strides(), heads.strides());
  EXPECT_TRUE(out.transpose(1, 2).is_contiguous());
  Tensor cols = zeros({3, 7}, DType::BF16).t();
  EXPECT_EQ(empty_like_layout(cols).strides(), (Shape{1, 7}));
  EXPECT_EQ(empty_like_layout(cols).dtype(), DType::BF16);
  EXPECT_TRUE(empty_like_layout(zeros({4, 6})).is_contiguous());
  EXPECT_TRUE(empty_like_layout(zeros({1, 6}).expand({4, 6})).is_contiguous());
  EXPECT_TRUE(empty_like_layout(zeros({6, 1}).expand({6, 4})).is_contiguous());
}

TEST(TensorViews, ViewRejectsIncompatibleStridesReshapeCopies) {
  Tensor t = arange(6, DType::F32).view({2, 3}).t();  // [3, 2], not contiguous
  EXPECT_THROW(t.view({6}), Error);
  Tensor r = t.reshape({6});
  EXPECT_FALSE(r.shares_storage(t));
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // Splitting a dim of a transposed tensor is still a view.
  Tensor u = arange(12, DType::F32).view({3, 4}).t();  // [4, 3]
  Tensor w = u.view({2, 2, 3});
  EXPECT_TRUE(w.shares_storage(u));
  EXPECT_EQ(w.contiguous().to_vector<float>(), u.contiguous().to_vector<float>());
}

TEST(TensorViews, CopyIntoViewBroadcastsAndConverts) {
  Tensor base = zeros({3, 4}, DType::F64);
  base.narrow(1, 1, 2).copy_(from_vector<float>({5.0f, 6.0f}, {2}));
  EXPECT_EQ(base.to_vector<double>(), (std::vector<double>{0, 5, 6, 0, 0, 5, 6, 0, 0, 5, 6, 0}));
}

TEST(TensorViews, ErrorsNameTheOpAndShapes) {
  Tensor t = zeros({2, 3});
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { t.view({4}); }), "view: shape [4] is invalid for 6 elements");
  EXPECT_EQ(message([&] { t.narrow(1, 2, 2); }),
            "narrow: range [2, 4) out of bounds for dim 1 of shape [2, 3]");
  EXPECT_EQ(message([&] { t.expand({2, 4}); }), "expand: cannot expand shape [2, 3] to [2, 4]");
  EXPECT_EQ(message([&] { t.transpose(0, 2); }), "transpose: dim 2 out of range for a tensor with 2 dims");
}

}  // namespace
}  // namespace moegrad

namespace moegrad {
namespace {

// Large enough for the tiled transposing copy, with sizes that are not multiples of the tile.
TEST(TensorViews, TransposingCopiesMatchElementByElement) {
  Tensor x = arange(3 * 70 * 45, DType::F64).view({3, 70, 45});
  for (const Tensor& v : {x.permute({0, 2, 1}), x.permute({2, 1, 0}), x.narrow(1, 3, 60).transpose(1, 2)}) {
    std::vector<double> got = v.contiguous().to_vector<double>();
    std::vector<double> base = x.to_vector<double>();
    Shape idx(v.dim(), 0);
    for (size_t k = 0; k < got.size(); ++k) {
      int64_t off = v.offset();
      for (int64_t d = 0; d < v.dim(); ++d) off += idx[d] * v.stride(d);
      ASSERT_EQ(got[k], base[off]) << "element " << k;
      for (int64_t d = v.dim() - 1; d >= 0 && ++idx[d] == v.size(d); --d) idx[d] = 0;
    }
    // With a dtype conversion on the way.
    Tensor f = empty(v.shape(), DType::F32);
    f.copy_(v);
    EXPECT_EQ(f.to_vector<double>(), got);
  }
}

}  // namespace
}  // namespace moegrad
