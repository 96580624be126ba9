#include <omp.h>

#include <cmath>

#include "core/random.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(Random, SameSeedSameNumbers) {
  Generator a(7), b(7), c(8);
  EXPECT_EQ(randn({100}, a).to_vector<float>(), randn({100}, b).to_vector<float>());
  EXPECT_NE(randn({100}, a).to_vector<float>(), randn({100}, c).to_vector<float>());
}

TEST(Random, IndependentOfThreadCount) {
  // Large enough for the parallel path.
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Generator g1(42);
  std::vector<float> one = randn({200003}, g1).to_vector<float>();
  omp_set_num_threads(4);
  Generator g4(42);
  std::vector<float> four = randn({200003}, g4).to_vector<float>();
  omp_set_num_threads(saved);
  EXPECT_EQ(one, four);
}

TEST(Random, SuccessiveDrawsContinueTheStream) {
  // Two draws of 3 then 5 equal one draw of 8: element i depends only on (seed, offset + i).
  Generator split(5), whole(5);
  std::vector<float> a = rand({3}, split).to_vector<float>();
  std::vector<float> b = rand({5}, split).to_vector<float>();
  a.insert(a.end(), b.begin(), b.end());
  EXPECT_EQ(a, rand({8}, whole).to_vector<float>());
  EXPECT_EQ(split.offset(), 8u);
}

TEST(Random, Distributions) {
  Generator g(1);
  std::vector<double> n = randn({100000}, g, DType::F64).to_vector<double>();
  double mean = 0, var = 0;
  for (double x : n) mean += x;
  mean /= double(n.size());
  for (double x : n) var += (x - mean) * (x - mean);
  var /= double(n.size());
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.02);

  std::vector<float> u = rand({100000}, g).to_vector<float>();
  for (float x : u) ASSERT_TRUE(x >= 0.0f && x < 1.0f);
  std::vector<int64_t> r = randint(-3, 4, {10000}, g).to_vector<int64_t>();
  std::vector<int> counts(7, 0);
  for (int64_t x : r) {
    ASSERT_TRUE(x >= -3 && x < 4);
    ++counts[x + 3];
  }
  for (int c : counts) EXPECT_GT(c, 1200);  // ~1429 each
}

TEST(Random, StateCanBeRestored) {
  Generator g(9);
  randn({10}, g);
  uint64_t seed = g.seed(), offset = g.offset();
  std::vector<float> next = randn({4}, g).to_vector<float>();
  Generator resumed;
  resumed.set_state(seed, offset);
  EXPECT_EQ(randn({4}, resumed).to_vector<float>(), next);
}

}  // namespace
}  // namespace moegrad
