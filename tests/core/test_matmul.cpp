#include <omp.h>

#include "core/ops/index.h"
#include "core/ops/matmul.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

using testing::group_starts;
using testing::random_tensor;

// The textbook triple loop in f64 over broadcast batch dims: the reference nothing of
// OpenBLAS or of the GEMM planning takes part in.
Tensor naive_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  Tensor la = ta ? a.transpose(-2, -1) : a, lb = tb ? b.transpose(-2, -1) : b;
  int64_t m = la.size(-2), k = la.size(-1), n = lb.size(-1);
  Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                 Shape(b.shape().begin(), b.shape().end() - 2), "naive");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {m, k});
  sb.insert(sb.end(), {k, n});
  so.insert(so.end(), {m, n});
  std::vector<double> x = la.expand(sa).to_vector<double>(), y = lb.expand(sb).to_vector<double>();
  std::vector<double> z(shape_numel(so), 0.0);
  for (int64_t p = 0; p < shape_numel(batch); ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t l = 0; l < k; ++l) s += x[(p * m + i) * k + l] * y[(p * k + l) * n + j];
        z[(p * m + i) * n + j] = s;
      }
  return from_vector(z, so);
}

Shape mat(bool trans, int64_t rows, int64_t cols) { return trans ? Shape{cols, rows} : Shape{rows, cols}; }

TEST(Matmul, AllTransposeCombinationsAndOddSizes) {
  const int64_t sizes[][3] = {{1, 1, 1}, {3, 17, 5}, {17, 3, 1}, {1, 17, 3}, {5, 1, 17}};
  uint64_t seed = 1;
  for (const auto& s : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Tensor a = random_tensor(mat(ta, s[0], s[1]), seed++);
        Tensor b = random_tensor(mat(tb, s[1], s[2]), seed++);
        SCOPED_TRACE(::testing::Message() << "M K N " << s[0] << " " << s[1] << " " << s[2]
                                          << " trans " << ta << tb);
        EXPECT_ALL_CLOSE(matmul(a, b, ta, tb), naive_matmul(a, b, ta, tb), 1e-12, 1e-12);
        EXPECT_ALL_CLOSE(matmul(a.to(DType::F32), b.to(DType::F32), ta, tb),
                         naive_matmul(a, b, ta, tb), 1e-5, 1e-5);
      }
}

TEST(Matmul, StridedViewsWithoutAndWithCopies) {
  Tensor b = random_tensor({7, 4}, 2);
  // Column-major (a transposed view), row-major with padded rows (a narrow view), and a view
  // whose columns are strided (BLAS cannot read it: the op copies).
  Tensor col_major = random_tensor({7, 5}, 3).t();
  Tensor padded = random_tensor({5, 10}, 4).narrow(1, 2, 7);
  Tensor strided_cols = random_tensor({5, 7, 2}, 5).select(2, 1);
  for (const Tensor& a : {col_major, padded, strided_cols})
    EXPECT_ALL_CLOSE(matmul(a, b), naive_matmul(a, b, false, false), 1e-12, 1e-12);
  // The same views as the second operand, and as transposed operands.
  Tensor x = random_tensor({3, 5}, 6);
  for (const Tensor& v : {col_major, padded, strided_cols}) {
    EXPECT_ALL_CLOSE(matmul(x, v), naive_matmul(x, v, false, false), 1e-12, 1e-12);
    EXPECT_ALL_CLOSE(matmul(v, v, true, false), naive_matmul(v, v, true, false), 1e-12, 1e-12);
    EXPECT_ALL_CLOSE(matmul(v, v, false, true), naive_matmul(v, v, false, true), 1e-12, 1e-12);
  }
}

TEST(Matmul, BatchedWithBroadcasting) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const Case cases[] = {
      {{4, 3, 5}, {5, 2}, false, false},           // [B, M, K] x [K, N]: one folded GEMM
      {{2, 3, 4, 5}, {2, 5}, false, true},         // the same through a weight [N, K]
      {{3, 5}, {4, 5, 2}, false, false},           // a shared by the batch
      {{4, 3, 5}, {4, 5, 2}, false, false},        // bmm
      {{2, 3, 4, 6}, {2, 3, 4, 6}, false, true},   // [B,H,T,D] x [B,H,D,T]: attention scores
      {{2, 3, 4, 6}, {2, 3, 4, 5}, true, false},   // [B,H,D,T]^T x [B,H,T,D]
      {{2, 1, 3, 5}, {1, 4, 5, 2}, false, false},  // both broadcast
      {{1, 5, 3}, {1, 2, 5}, true, true},
      {{2, 3, 17, 1}, {1, 3}, false, false},       // K = 1
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
    SCOPED_TRACE(::testing::Message() << shape_str(c.a) << " x " << shape_str(c.b));
    EXPECT_ALL_CLOSE(matmul(a, b, c.ta, c.tb), naive_matmul(a, b, c.ta, c.tb), 1e-12, 1e-12);
  }
}

TEST(Matmul, NonContiguousBatches) {
  Tensor w = random_tensor({5, 3}, 20);
  // A batch that does not fold into rows: [T, B, K] seen as [B, T, K].
  Tensor a = random_tensor({4, 2, 5}, 21).transpose(0, 1);
  EXPECT_ALL_CLOSE(matmul(a, w), naive_matmul(a, w, false, false), 1e-12, 1e-12);
  // Batch dims that do not merge (the inner one narrowed) and a column-major batch.
  Tensor x = random_tensor({2, 4, 3, 5}, 22).narrow(1, 1, 3);
  Tensor y = random_tensor({2, 3, 3, 5}, 23).transpose(-2, -1);
  EXPECT_ALL_CLOSE(matmul(x, y), naive_matmul(x, y, false, false), 1e-12, 1e-12);
  // Rows folded across a column-major batch: [K, B*M] seen as [B, M, K].
  Tensor z = random_tensor({5, 6}, 24).t().view({2, 3, 5});
  EXPECT_ALL_CLOSE(matmul(z, w), naive_matmul(z, w, false, false), 1e-12, 1e-12);
}

TEST(Matmul, ManyBatchesSmallAndLarge) {
  // Many small GEMMs run batch-parallel, large ones one after another: both must agree with
  // the reference, and with the same GEMMs done one at a time, bit for bit.
  for (auto [batch, n] : {std::pair<int64_t, int64_t>{80, 16}, {3, 70}}) {
    Tensor a = random_tensor({batch, n, n}, 30 + n, DType::F32);
    Tensor b = random_tensor({batch, n, n}, 31 + n, DType::F32);
    Tensor c = matmul(a, b);
    EXPECT_ALL_CLOSE(c, naive_matmul(a, b, false, false), 1e-4, 1e-4);
    for (int64_t i = 0; i < batch; ++i)
      EXPECT_EQ(c.select(0, i).to_vector<float>(),
                matmul(a.select(0, i), b.select(0, i)).to_vector<float>());
  }
}

TEST(Matmul, EmptyDims) {
  Tensor z = matmul(random_tensor({3, 0}, 40), random_tensor({0, 4}, 41));
  EXPECT_EQ(z.shape(), (Shape{3, 4}));
  EXPECT_ALL_CLOSE(z, zeros({3, 4}, DType::F64), 0, 0);
  Tensor zb = matmul(random_tensor({2, 0, 3}, 42), random_tensor({0, 4}, 43), true, false);
  EXPECT_ALL_CLOSE(zb, zeros({2, 3, 4}, DType::F64), 0, 0);
  EXPECT_EQ(matmul(random_tensor({0, 3}, 44), random_tensor({3, 4}, 45)).shape(), (Shape{0, 4}));
  EXPECT_EQ(matmul(random_tensor({0, 2, 3}, 46), random_tensor({3, 4}, 47)).shape(),
            (Shape{0, 2, 4}));
}

TEST(Matmul, Linear) {
  Tensor w = random_tensor({4, 5}, 50);
  Tensor x = random_tensor({2, 3, 5}, 51);
  EXPECT_ALL_CLOSE(linear(x, w), naive_matmul(x, w, false, true), 1e-12, 1e-12);
  Tensor v = random_tensor({5}, 52);
  EXPECT_ALL_CLOSE(linear(v, w), naive_matmul(v.unsqueeze(0), w, false, true).view({4}), 1e-12,
                   1e-12);
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Group g of `rows` as its own 2-D view of t.
Tensor group(const Tensor& t, const std::vector<int64_t>& rows, size_t g) {
  int64_t start = 0;
  for (size_t i = 0; i < g; ++i) start += rows[i];
  return t.narrow(0, start, rows[g]);
}

TEST(GroupedMatmul, EachGroupIsAMatmulWithItsOwnWeight) {
  const std::vector<int64_t> rows = {3, 0, 5, 1, 17};  // an empty group and odd sizes
  uint64_t seed = 70;
  for (bool trans : {true, false})
    for (DType dt : {DType::F64, DType::F32}) {
      SCOPED_TRACE(::testing::Message() << "trans " << trans << " " << dtype_name(dt));
      Tensor x = random_tensor({26, 7}, seed++, dt);
      std::vector<Tensor> w;
      for (size_t g = 0; g < rows.size(); ++g) w.push_back(random_tensor(mat(trans, 7, 4), seed++, dt));
      Tensor out = grouped_matmul(x, w, rows, trans);
      ASSERT_EQ(out.shape(), (Shape{26, 4}));
      const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
      for (size_t g = 0; g < rows.size(); ++g)
        EXPECT_ALL_CLOSE(group(out, rows, g), naive_matmul(group(x, rows, g), w[g], false, trans),
                         tol, tol);
    }
}

TEST(GroupedMatmul, NonContiguousOperands) {
  const std::vector<int64_t> rows = {2, 4};
  Tensor x = random_tensor({5, 6}, 80).t();                        // [6, 5], column-major
  std::vector<Tensor> w = {random_tensor({5, 3}, 81).t(),           // [3, 5] transposed views
                           random_tensor({3, 10}, 82).narrow(1, 2, 5)};
  Tensor out = grouped_matmul(x, w, rows, true);
  for (size_t g = 0; g < rows.size(); ++g)
    EXPECT_ALL_CLOSE(group(out, rows, g), naive_matmul(group(x, rows, g), w[g], false, true),
                     1e-12, 1e-12);
}

TEST(GroupedMatmul, WeightGradientFormPerWantedGroup) {
  const std::vector<int64_t> rows = {4, 0, 3, 2, 1};
  const std::vector<bool> want = {true, true, false, true, true};
  Tensor a = random_tensor({10, 5}, 90), b = random_tensor({10, 3}, 91);
  std::vector<Tensor> out = grouped_matmul_tn(a, b, rows, want);
  ASSERT_EQ(out.size(), rows.size());
  EXPECT_FALSE(out[2].defined());
  EXPECT_ALL_CLOSE(out[1], zeros({5, 3}, DType::F64), 0, 0);
  for (size_t g : {0, 3, 4})
    EXPECT_ALL_CLOSE(out[g], naive_matmul(group(a, rows, g), group(b, rows, g), true, false),
                     1e-12, 1e-12);
}

// a's columns in blocks, each block's groups a weight of its own: block 0's groups first, each
// product of the block read in place (a column block of a is not contiguous).
TEST(GroupedMatmul, WeightGradientFormPerColumnBlock) {
  const std::vector<int64_t> rows = {3, 0, 4};
  const std::vector<bool> want = {true, true, false, false, true, true};
  Tensor a = random_tensor({7, 6}, 92), b = random_tensor({7, 5}, 93);
  std::vector<Tensor> out = grouped_matmul_tn(a, b, rows, want);
  ASSERT_EQ(out.size(), 6u);
  EXPECT_FALSE(out[2].defined());
  EXPECT_FALSE(out[3].defined());
  EXPECT_ALL_CLOSE(out[1], zeros({3, 5}, DType::F64), 0, 0);
  EXPECT_ALL_CLOSE(out[4], zeros({3, 5}, DType::F64), 0, 0);
  for (auto [i, block, g] : {std::tuple{0, 0, 0}, {5, 1, 2}})
    EXPECT_ALL_CLOSE(
        out[size_t(i)],
        naive_matmul(group(a.narrow(1, 3 * block, 3), rows, size_t(g)), group(b, rows, size_t(g)),
                     true, false),
        1e-12, 1e-12);
  expect_error([&] { grouped_matmul_tn(a, b, rows, {true, true}); },
               "grouped_matmul_tn: 2 flags for 3 row groups (expected a positive multiple)");
  expect_error([&] { grouped_matmul_tn(a, b, rows, {}); },
               "grouped_matmul_tn: 0 flags for 3 row groups (expected a positive multiple)");
  expect_error([&] { grouped_matmul_tn(a, b, rows, std::vector<bool>(12, true)); },
               "first operand [7, 6] does not split into 4 column blocks");
}

// Groups large enough for OpenBLAS to thread (over 64^3 multiply-adds each) run whole on
// separate threads when there are enough of them (here 8 groups on 2 or 3 threads), in turn
// otherwise (one thread, or one group dominating): each way gives every group's product, and
// the same bits run to run.
TEST(GroupedMatmul, LargeGroupsOnAnyThreadCount) {
  const std::vector<std::vector<int64_t>> layouts = {{70, 90, 65, 120, 77, 0, 101, 66},
                                                     {400, 70, 65}};
  const int threads = omp_get_max_threads();
  uint64_t seed = 300;
  for (const std::vector<int64_t>& rows : layouts) {
    int64_t total = 0;
    for (int64_t r : rows) total += r;
    Tensor x = random_tensor({total, 96}, seed++, DType::F32);
    Tensor dy = random_tensor({total, 88}, seed++, DType::F32);
    std::vector<Tensor> w;
    for (size_t g = 0; g < rows.size(); ++g)
      w.push_back(random_tensor({88, 96}, seed++, DType::F32));
    const std::vector<bool> want(rows.size(), true);
    for (int n : {1, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << rows.size() << " groups, " << n << " threads");
      omp_set_num_threads(n);
      Tensor out = grouped_matmul(x, w, rows, true);
      Tensor dx = grouped_matmul(dy, w, rows, false);
      std::vector<Tensor> dw = grouped_matmul_tn(dy, x, rows, want);
      EXPECT_ALL_CLOSE(grouped_matmul(x, w, rows, true), out, 0, 0);
      EXPECT_ALL_CLOSE(grouped_matmul(dy, w, rows, false), dx, 0, 0);
      std::vector<Tensor> again = grouped_matmul_tn(dy, x, rows, want);
      omp_set_num_threads(threads);
      // f32 sums of up to 400 unit-sized products: absolute error to 1e-4 where they cancel.
      for (size_t g = 0; g < rows.size(); ++g) {
        const Tensor xg = group(x, rows, g), dyg = group(dy, rows, g);
        EXPECT_ALL_CLOSE(group(out, rows, g), naive_matmul(xg, w[g], false, true), 1e-4, 1e-5);
        EXPECT_ALL_CLOSE(group(dx, rows, g), naive_matmul(dyg, w[g], false, false), 1e-4, 1e-5);
        EXPECT_ALL_CLOSE(dw[g], naive_matmul(dyg, xg, true, false), 1e-4, 1e-5);
        EXPECT_ALL_CLOSE(again[g], dw[g], 0, 0);
      }
    }
  }
}

TEST(GroupedMatmul, ErrorsNameWhatDoesNotFit) {
  Tensor x = random_tensor({5, 4}, 95);
  std::vector<Tensor> w = {random_tensor({3, 4}, 96), random_tensor({3, 4}, 97)};
  expect_error([&] { grouped_matmul(x, w, {2, 2}, true); },
               "grouped_matmul: group sizes sum to 4 rows, but the input has 5");
  expect_error([&] { grouped_matmul(x, w, {5}, true); }, "2 weights for 1 row groups");
  expect_error([&] { grouped_matmul(x, w, {2, 3}, false); },
               "input [5, 4] does not fit weights [3, 4]");
  expect_error([&] { grouped_matmul(x, {w[0], random_tensor({2, 4}, 98)}, {2, 3}, true); },
               "weights [3, 4] and [2, 4] differ in shape");
  expect_error([&] { grouped_matmul(x, w, {-1, 6}, true); }, "negative group size -1");
  expect_error([&] { grouped_matmul_tn(x, random_tensor({4, 2}, 99), {5}, {true}); },
               "grouped_matmul_tn: operands [5, 4] and [4, 2] differ in rows");
}

// Output row r is x's row rows[r] times the weight of the group that holds r: a gather that repeats
// and skips rows, empty groups, int32 and int64 rows and none (x's rows in order), in f64 and in
// bf16 (rounded once: within 1e-2 of the f64 product of the same values), both weight layouts.
TEST(GatheredGroupedMatmul, EachRowIsItsSourceRowTimesItsGroupsWeight) {
  const std::vector<int64_t> counts = {3, 0, 5, 1, 3, 0};
  const std::vector<int64_t> picks = {8, 2, 2, 0, 5, 7, 1, 1, 3, 6, 0, 8};
  uint64_t seed = 400;
  for (DType dt : {DType::F64, DType::BF16})
    for (bool trans : {true, false})
      for (DType index : {DType::I32, DType::I64, DType::F32 /* no rows */}) {
        SCOPED_TRACE(::testing::Message()
                     << dtype_name(dt) << " trans " << trans << " rows " << dtype_name(index));
        const bool gathered = index != DType::F32;
        const Tensor x = random_tensor({gathered ? 9 : 12, 7}, seed++, dt);
        const Tensor w = random_tensor(trans ? Shape{6, 4, 7} : Shape{6, 7, 4}, seed++, dt);
        const Tensor rows = gathered ? from_vector(picks, {12}).to(index) : Tensor();
        const Tensor out = gathered_grouped_matmul(x, rows, w, group_starts(counts), trans);
        ASSERT_EQ(out.shape(), (Shape{12, 4}));
        EXPECT_EQ(out.dtype(), dt);
        const double tol = dt == DType::F64 ? 1e-12 : 1e-2;
        for (int64_t g = 0, r = 0; g < 6; ++g)
          for (int64_t i = 0; i < counts[size_t(g)]; ++i, ++r) {
            const Tensor src = x.narrow(0, gathered ? picks[size_t(r)] : r, 1).to(DType::F64);
            EXPECT_ALL_CLOSE(out.narrow(0, r, 1).to(DType::F64),
                             naive_matmul(src, w.select(0, g).to(DType::F64), false, trans), tol,
                             tol);
          }
      }
}

// Group g's result is the rows a's picks name in a, transposed, times those b's picks name in b
// (an operand's own rows without picks); an empty group's is zeros.
TEST(GatheredGroupedMatmul, WeightGradientFormSumsEachGroupsRows) {
  const std::vector<int64_t> counts = {3, 0, 5, 1, 3, 0};
  const std::vector<int64_t> a_picks = {1, 1, 4, 0, 9, 3, 3, 2, 8, 5, 6, 7};
  const std::vector<int64_t> b_picks = {8, 2, 2, 0, 5, 7, 1, 1, 3, 6, 0, 8};
  const DType none = DType::F32;
  uint64_t seed = 440;
  for (DType dt : {DType::F64, DType::BF16})
    for (DType a_index : {DType::I32, DType::I64, none})
      for (DType b_index : {DType::I32, DType::I64, none}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " a picks " << dtype_name(a_index)
                                          << " b picks " << dtype_name(b_index));
        auto picks = [&](DType index, const std::vector<int64_t>& values) {
          return index != none ? from_vector(values, {12}).to(index) : Tensor();
        };
        const Tensor a_rows = picks(a_index, a_picks), b_rows = picks(b_index, b_picks);
        const Tensor a = random_tensor({a_rows.defined() ? 10 : 12, 5}, seed++, dt);
        const Tensor b = random_tensor({b_rows.defined() ? 10 : 12, 4}, seed++, dt);
        auto picked = [](const Tensor& x, const Tensor& rows) {
          return rows.defined() ? index_select(x, 0, rows) : x;
        };
        const Tensor a_picked = picked(a, a_rows), b_picked = picked(b, b_rows);
        const Tensor out = gathered_grouped_matmul_tn(a, a_rows, b, b_rows, group_starts(counts));
        ASSERT_EQ(out.shape(), (Shape{6, 5, 4}));
        EXPECT_EQ(out.dtype(), dt);
        const double tol = dt == DType::F64 ? 1e-12 : 1e-2;
        for (int64_t g = 0, r = 0; g < 6; r += counts[size_t(g)], ++g)
          EXPECT_ALL_CLOSE(
              out.select(0, g).to(DType::F64),
              naive_matmul(a_picked.narrow(0, r, counts[size_t(g)]).to(DType::F64),
                           b_picked.narrow(0, r, counts[size_t(g)]).to(DType::F64), true, false),
              tol, tol);
      }
  const Tensor a = random_tensor({4, 3}, 460), b = random_tensor({5, 2}, 461);
  const Tensor three = from_vector(std::vector<int64_t>{0, 1, 4}, {3});
  expect_error([&] { gathered_grouped_matmul_tn(a, Tensor(), b, three, group_starts({4})); },
               "gathered_grouped_matmul_tn: 3 rows picked for 4 rows");
  expect_error([&] { gathered_grouped_matmul_tn(a, three, b, Tensor(), group_starts({3})); },
               "second operand [5, 2] has 5 rows, expected 3 (the first operand's picks)");
  expect_error([&] { gathered_grouped_matmul_tn(a, Tensor(), b, Tensor(), group_starts({4})); },
               "second operand [5, 2] has 5 rows, expected 4 (the first operand's rows)");
  expect_error([&] { gathered_grouped_matmul_tn(a, three.to(DType::F32), b, three, {}); },
               "gathered_grouped_matmul_tn: group starts tensor is undefined");
  expect_error(
      [&] { gathered_grouped_matmul_tn(a, three.to(DType::F32), b, three, group_starts({3})); },
      "gathered_grouped_matmul_tn: rows must be a 1-D int32 or int64 index, got float32 [3]");
  expect_error(
      [&] {
        gathered_grouped_matmul_tn(a, Tensor(), b.narrow(0, 0, 4), Tensor(), group_starts({}));
      },
      "group starts must be int64 [G + 1] with G > 0, got int64 [1]");
  expect_error(
      [&] {
        gathered_grouped_matmul_tn(a, Tensor(), b.narrow(0, 0, 4), Tensor(), group_starts({3}));
      },
      "group starts run from 0 to 3, expected 0 to 4 rows");
}

TEST(GatheredGroupedMatmul, ErrorsNameWhatDoesNotFit) {
  const Tensor x = random_tensor({5, 4}, 420), w = random_tensor({2, 3, 4}, 421);
  const Tensor rows = from_vector(std::vector<int64_t>{0, 1, 4}, {3});
  expect_error(
      [&] {
        gathered_grouped_matmul(x, rows, w, group_starts({2, 2}), true);
      },
      "gathered_grouped_matmul: group starts run from 0 to 4, expected 0 to 3 "
      "rows");
  expect_error(
      [&] {
        gathered_grouped_matmul(x, Tensor(), w, group_starts({3, 1}), true);
      },
      "group starts run from 0 to 4, expected 0 to 5 rows");
  expect_error(
      [&] {
        gathered_grouped_matmul(x, rows, w, from_vector(std::vector<int64_t>{0, 4, 3}, {3}), true);
      },
      "group starts decrease at group 1 (4 then 3)");
  expect_error([&] { gathered_grouped_matmul(x, rows, w, group_starts({3}), true); },
               "group starts must be int64 [3] for 2 weights, got int64 [2]");
  expect_error(
      [&] {
        gathered_grouped_matmul(x, rows, w, group_starts({2, 1}), false);
      },
      "input [5, 4] does not fit weights [2, 3, 4]");
  expect_error([&] { gathered_grouped_matmul(x, rows, w.select(0, 0), group_starts({3}), true); },
               "expected a weight stack [G, N, K] with G > 0, got [3, 4]");
  expect_error(
      [&] {
        gathered_grouped_matmul(x, rows.to(DType::F32), w, group_starts({2, 1}), true);
      },
      "rows must be a 1-D int32 or int64 index, got float32 [3]");
  expect_error(
      [&] {
        gathered_grouped_matmul(x, from_vector(std::vector<int64_t>{0, 5, 1}, {3}), w,
                                group_starts({2, 1}), true);
      },
      "out of range");
}

// bf16 operands: f32 products and sums, one rounding per output element. The reference is the
// f32 op on the same (bf16-valued) operands.
Tensor bf16_random(const Shape& shape, uint64_t seed) {
  return random_tensor(shape, seed, DType::BF16);
}

void expect_bf16_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  Tensor out = matmul(a, b, ta, tb);
  EXPECT_EQ(out.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(out.to(DType::F32), matmul(a.to(DType::F32), b.to(DType::F32), ta, tb), 1e-2,
                   1e-2);
}

TEST(MatmulBf16, TransposesOddSizesAndViews) {
  uint64_t seed = 200;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans " << ta << tb);
      const Tensor a = bf16_random(mat(ta, 37, 53), seed++);
      expect_bf16_matmul(a, bf16_random(mat(tb, 53, 19), seed++), ta, tb);
    }
  Tensor padded = bf16_random({5, 10}, seed++).narrow(1, 2, 7);           // ld 10
  Tensor strided_cols = bf16_random({5, 7, 2}, seed++).select(2, 1);      // copied for BLAS
  Tensor col_major = bf16_random({7, 4}, seed++).t();                     // [4, 7]
  expect_bf16_matmul(padded, col_major, false, true);
  expect_bf16_matmul(strided_cols, col_major, false, true);
  expect_bf16_matmul(col_major, padded, false, true);
}

TEST(MatmulBf16, RoundsTheF32ResultOnce) {
  // On the CPU a contiguous bf16 GEMM is the f32 GEMM of the widened operands, rounded.
  Tensor a = bf16_random({9, 33}, 210), b = bf16_random({33, 11}, 211);
  Tensor f32 = matmul(a.to(DType::F32), b.to(DType::F32));
  EXPECT_ALL_CLOSE(matmul(a, b), f32.to(DType::BF16), 0, 0);
}

TEST(MatmulBf16, BatchedBroadcastAndLinear) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const Case cases[] = {
      {{4, 3, 5}, {5, 2}, false, false},           // folded into one GEMM
      {{3, 5}, {4, 5, 2}, false, false},           // a shared by the batch
      {{2, 3, 4, 6}, {2, 3, 4, 6}, false, true},   // attention scores
      {{2, 1, 3, 5}, {1, 4, 5, 2}, false, false},  // both broadcast
      {{80, 16, 16}, {80, 16, 16}, false, false},  // batch-parallel small GEMMs
  };
  uint64_t seed = 220;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << shape_str(c.a) << " x " << shape_str(c.b));
    const Tensor a = bf16_random(c.a, seed++);
    expect_bf16_matmul(a, bf16_random(c.b, seed++), c.ta, c.tb);
  }
  Tensor x = bf16_random({4, 2, 5}, seed++).transpose(0, 1), w = bf16_random({3, 5}, seed++);
  Tensor y = linear(x, w);
  EXPECT_EQ(y.dtype(), DType::BF16);
  EXPECT_ALL_CLOSE(y.to(DType::F32), linear(x.to(DType::F32), w.to(DType::F32)), 1e-2, 1e-2);
}

TEST(MatmulBf16, GroupedAndWeightGradientForms) {
  const std::vector<int64_t> rows = {3, 0, 5, 1, 17};
  uint64_t seed = 240;
  Tensor x = bf16_random({53, 26}, seed++).t();  // [26, 53], column-major
  for (bool trans : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "trans " << trans);
    std::vector<Tensor> w, w32;
    for (size_t g = 0; g < rows.size(); ++g) {
      w.push_back(bf16_random(mat(trans, 53, 19), seed++));
      w32.push_back(w.back().to(DType::F32));
    }
    Tensor out = grouped_matmul(x, w, rows, trans);
    EXPECT_EQ(out.dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(out.to(DType::F32), grouped_matmul(x.to(DType::F32), w32, rows, trans), 1e-2,
                     1e-2);
  }
  Tensor a = bf16_random({26, 37}, seed++), b = bf16_random({26, 19}, seed++);
  const std::vector<bool> want = {true, true, false, true, true};
  std::vector<Tensor> got = grouped_matmul_tn(a, b, rows, want);
  std::vector<Tensor> ref = grouped_matmul_tn(a.to(DType::F32), b.to(DType::F32), rows, want);
  for (size_t g = 0; g < rows.size(); ++g) {
    ASSERT_EQ(got[g].defined(), want[g]);
    if (!want[g]) continue;
    EXPECT_EQ(got[g].dtype(), DType::BF16);
    EXPECT_ALL_CLOSE(got[g].to(DType::F32), ref[g], 1e-2, 1e-2);
  }
}

TEST(MatmulBf16, MixedDtypesAreAnError) {
  Tensor a = bf16_random({3, 4}, 260);
  expect_error([&] { matmul(a, a.to(DType::F32), false, true); }, "matmul");
  expect_error([&] { grouped_matmul(a, {a.to(DType::F32)}, {3}, true); }, "grouped_matmul");
  expect_error([&] { matmul(a.to(DType::F16), a.to(DType::F16), false, true); },
               "expected float32, float64 or bfloat16 operands, got float16");
}

TEST(Matmul, ErrorsNameTheShapes) {
  Tensor a = random_tensor({3, 4}, 60), b = random_tensor({5, 2}, 61);
  expect_error([&] { matmul(a, b); }, "matmul: inner dims differ in [3, 4] @ [5, 2]");
  expect_error([&] { matmul(a, b, false, true); }, "[3, 4] @ [5, 2]^T");
  expect_error([&] { matmul(random_tensor({4}, 62), a); }, "at least 2 dims, got [4] and [3, 4]");
  expect_error([&] { matmul(random_tensor({2, 3, 4}, 63), random_tensor({3, 4, 2}, 64)); },
               "matmul");
  expect_error([&] { matmul(a, a.to(DType::F32), false, true); }, "matmul");
  expect_error([&] { matmul(a.to(DType::I64), a.to(DType::I64), false, true); }, "int64");
  expect_error([&] { linear(a, b); }, "linear: expected input [..., in] and weight [out, in]");
}

}  // namespace
}  // namespace moegrad
