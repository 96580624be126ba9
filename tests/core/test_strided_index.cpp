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

// The row kernels (RMSNorm, cross-entropy, softmax, the scaled SwiGLU backward, RoPE) move 16-byte
// vectors of a row only when the row length, every other stride and each tensor's first element
// all fall on vectors; otherwise they take one element a thread.
TEST(RowVectors, SplitOnlyWhenLengthStridesAndStartsAllow) {
  const Tensor x = zeros({5, 72}, DType::BF16);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(x.data_ptr()) % 16, 0u);
  EXPECT_TRUE(cuda::rows_split<bf16>(72, {&x}));
  EXPECT_FALSE(cuda::rows_split<bf16>(36, {&x}));  // a row of 36 is not whole vectors of 8
  const Tensor from_vector = x.narrow(1, 8, 64), mid_vector = x.narrow(1, 1, 64);
  EXPECT_TRUE(cuda::rows_split<bf16>(64, {&from_vector}));  // rows of stride 72
  EXPECT_FALSE(cuda::rows_split<bf16>(64, {&mid_vector}));
  EXPECT_FALSE(cuda::rows_split<bf16>(64, {&from_vector, &mid_vector}));
  const Tensor odd_rows = zeros({5, 68}, DType::BF16).narrow(1, 0, 64);
  EXPECT_FALSE(cuda::rows_split<bf16>(64, {&odd_rows}));  // row stride 68
  EXPECT_TRUE(cuda::rows_split<float>(64, {&odd_rows}));  // vectors of 4 (8 bytes of bf16)
  // A single row's stride never steps: only where it starts counts (element 136, then 68).
  const Tensor row_2 = odd_rows.narrow(0, 2, 1), row_1 = odd_rows.narrow(0, 1, 1);
  EXPECT_TRUE(cuda::rows_split<bf16>(64, {&row_2}));
  EXPECT_FALSE(cuda::rows_split<bf16>(64, {&row_1}));
  // The row's stride must be 1, and only the row's: a transposed view, and a view whose rows
  // overlap (both dims of stride 1), take single elements.
  const Tensor square = zeros({16, 16}, DType::F32), transposed = square.t();
  EXPECT_FALSE(cuda::rows_split<float>(16, {&transposed}));
  const Tensor overlapping = square.as_strided({5, 8}, {1, 1}, 0);
  EXPECT_FALSE(cuda::rows_split<float>(8, {&overlapping}));
  // The attention's heads, [B, T, H, D] seen as [B, H, T, D]: every stride a multiple of D.
  const Tensor heads = zeros({2, 7, 3, 64}, DType::BF16).transpose(1, 2);
  EXPECT_TRUE(cuda::rows_split<bf16>(32, {&heads}));
}

}  // namespace
}  // namespace moegrad
