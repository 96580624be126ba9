#include <random>
#include <vector>

#include "core/fast_divmod.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

// Against the hardware's division: every small divisor, powers of two and their neighbours,
// random ones up to 2^31 - 1, each with the numerators at the edges and random ones below 2^31.
TEST(FastDivmod, DividesLikeIntegerDivision) {
  std::vector<int64_t> divisors;
  for (int64_t d = 1; d <= 3000; ++d) divisors.push_back(d);
  for (int s = 2; s <= 31; ++s)
    for (int64_t d : {(int64_t(1) << s) - 1, int64_t(1) << s, (int64_t(1) << s) + 1})
      if (d < (int64_t(1) << 31)) divisors.push_back(d);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) divisors.push_back(1 + int64_t(rng() % ((uint64_t(1) << 31) - 1)));
  const uint32_t top = (uint32_t(1) << 31) - 1;
  for (int64_t d : divisors) {
    const FastDivmod f(d);
    ASSERT_EQ(f.divisor(), uint32_t(d));
    const uint32_t ud = uint32_t(d);
    std::vector<uint32_t> numerators = {0, 1, ud - 1, ud, top, top - 1, top - ud + 1};
    if (ud < top / 2) numerators.insert(numerators.end(), {2 * ud - 1, 2 * ud, 2 * ud + 1});
    for (int j = 0; j < 50; ++j) numerators.push_back(uint32_t(rng() % (uint64_t(top) + 1)));
    for (uint32_t n : numerators)
      ASSERT_EQ(f.div(n), n / ud) << n << " / " << d;
  }
}

TEST(FastDivmod, RejectsDivisorsOutOfRange) {
  testing::expect_error([] { FastDivmod f(0); }, "divisor 0");
  testing::expect_error([] { FastDivmod f(int64_t(1) << 31); }, "out of range");
}

}  // namespace
}  // namespace moegrad
