// Shapes and strides (in elements), and the rules that relate them: contiguity, broadcasting.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moegrad {

using Shape = std::vector<int64_t>;
// N shapes (operands' strides, say) held by reference: `{a.strides(), b.strides()}` converts to it
// without copying a vector, which a small op's loop setup would otherwise do per operand.
template <size_t N>
using ShapeRefs = std::array<std::reference_wrapper<const Shape>, N>;

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3]"
// Maps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace moegrad
