#include <cmath>
#include <limits>

#include "core/half.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(DType, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties go to the even mantissa.
  EXPECT_EQ(float(bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(float(bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  // Just above halfway rounds up.
  EXPECT_EQ(float(bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20))),
            1.0f + std::ldexp(1.0f, -7));
  EXPECT_TRUE(std::isnan(float(bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(float(bf16(std::numeric_limits<float>::infinity()))));
}

TEST(DType, F16ConversionMatchesIeee) {
  EXPECT_EQ(float(f16(1.0f)), 1.0f);
  EXPECT_EQ(float(f16(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(float(f16(65520.0f))));  // halfway to 65536 rounds to even: overflow
  EXPECT_EQ(float(f16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(float(f16(1.0f + std::ldexp(1.0f, -11))), 1.0f);              // tie to even
  EXPECT_EQ(float(f16(-2.5f)), -2.5f);
}

TEST(DType, TensorRoundTripsPreserveRepresentableValues) {
  std::vector<float> v = {0.0f, -1.5f, 3.0f, 1024.0f, -0.25f, 7.0f};
  Tensor t = from_vector(v, {2, 3});
  EXPECT_EQ(t.to(DType::BF16).to(DType::F32).to_vector<float>(), v);
  EXPECT_EQ(t.to(DType::F16).to(DType::F32).to_vector<float>(), v);
  EXPECT_EQ(t.to(DType::F64).to(DType::F32).to_vector<float>(), v);
  EXPECT_EQ(t.to(DType::I64).to_vector<int64_t>(), (std::vector<int64_t>{0, -1, 3, 1024, 0, 7}));
}

TEST(DType, Bf16TensorConversionAgreesWithScalar) {
  Tensor x = testing::random_tensor({257}, 3, DType::F32);
  std::vector<float> xs = x.to_vector<float>();
  std::vector<float> via_tensor = x.to(DType::BF16).to(DType::F32).to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(via_tensor[i], float(bf16(xs[i])));
}

TEST(DType, DataAccessorChecksDtype) {
  Tensor t = zeros({2}, DType::F32);
  EXPECT_THROW(t.data<double>(), Error);
}

}  // namespace
}  // namespace moegrad
