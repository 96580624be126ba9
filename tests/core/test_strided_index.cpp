// The offsets CUDA's elementwise kernels compute from a linear index (core/cuda/strided.cuh),
// checked on the host: the 32-bit path with multiply-and-shift division against plain 64-bit
// division, and both against the operands' own strides.
#include <algorithm>
#include <array>
#include <random>
#include <vector>

#include "core/cuda/strided.cuh"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(StridedIndex, NarrowOffsetsMatchTheStrides) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const int ndim = 1 + int(rng() % 5);
    Shape shape(size_t(ndim), 1);
    for (int64_t& s : shape) s = 1 + int64_t(rng() % 7);
    // Operand 0 dense; operand 1 permuted (a transpose) with a broadcast dim now and then.
    std::array<Shape, 2> strides{contiguous_strides(shape), Shape(size_t(ndim), 0)};
    std::vector<int> order;
    for (int d = 0; d < ndim; ++d) order.push_back(d);
    std::shuffle(order.begin(), order.end(), rng);
    int64_t step = 1;
    for (int d : order) {
      strides[1][size_t(d)] = rng() % 5 == 0 ? 0 : step;
      step *= shape[size_t(d)] + int64_t(rng() % 2);  // padding between rows now and then
    }
    const cuda::StridedIndex<2> narrow =
        cuda::make_strided_index<2>(shape, {strides[0], strides[1]});
    ASSERT_TRUE(narrow.narrow);
    cuda::StridedIndex<2> wide = narrow;
    wide.narrow = false;
    const int64_t n = shape_numel(shape);
    for (int64_t linear = 0; linear < n; ++linear) {
      int64_t a[2], b[2], expected[2] = {0, 0};
      narrow.offsets(linear, a);
      wide.offsets(linear, b);
      int64_t rest = linear;
      for (int d = ndim - 1; d >= 0; --d) {
        const int64_t i = rest % shape[size_t(d)];
        rest /= shape[size_t(d)];
        for (int k = 0; k < 2; ++k) expected[k] += i * strides[size_t(k)][size_t(d)];
      }
      for (int k = 0; k < 2; ++k) {
        ASSERT_EQ(a[k], expected[k]) << "operand " << k << " of " << shape_str(shape) << " at " << linear;
        ASSERT_EQ(b[k], expected[k]);
      }
    }
  }
}

TEST(StridedIndex, TensorsOf2To31ElementsOrMoreUse64BitIndices) {
  const Shape shape = {int64_t(1) << 16, int64_t(1) << 15};
  const Shape strides = {1, shape[0]}, empty_strides = {3, 1};
  const cuda::StridedIndex<1> ix = cuda::make_strided_index<1>(shape, {strides});
  EXPECT_FALSE(ix.narrow);
  int64_t off[1];
  ix.offsets((int64_t(1) << 31) - 1, off);  // the last element: row 65535, column 32767
  EXPECT_EQ(off[0], 65535 + 32767 * shape[0]);
  EXPECT_FALSE(cuda::make_strided_index<1>({0, 3}, {empty_strides}).narrow);  // empty
}

// The dense map kernel moves 16 bytes of its widest operand a thread, as one access an operand
// when each operand's address is a multiple of its vector; the narrower operands' vectors are
// smaller (an f32 result of bf16 inputs: vectors of 4, 16 bytes out and 8 in).
TEST(DenseMap, VectorsAreSixteenBytesOfTheWidestOperandAndAligned) {
  EXPECT_EQ((cuda::kVectorWidth<bf16, bf16, bf16>), 8);
  EXPECT_EQ((cuda::kVectorWidth<float, bf16>), 4);
  EXPECT_EQ((cuda::kVectorWidth<bool, float, float>), 4);
  EXPECT_EQ((cuda::kVectorWidth<double>), 2);
  EXPECT_EQ((cuda::kVectorWidth<bool>), 16);
  alignas(64) static unsigned char buffer[256];
  // f32 vectors of 4 need 16-byte addresses, bf16 vectors of 4 need 8.
  EXPECT_TRUE(cuda::vector_aligned(4, {{buffer, 4}, {buffer + 8, 2}, {buffer + 48, 4}}));
  EXPECT_FALSE(cuda::vector_aligned(4, {{buffer, 4}, {buffer + 4, 2}}));
  EXPECT_FALSE(cuda::vector_aligned(4, {{buffer + 8, 4}, {buffer, 2}}));
  EXPECT_TRUE(cuda::vector_aligned(1, {{buffer + 1, 1}, {buffer + 2, 2}}));
}

}  // namespace
}  // namespace moegrad
