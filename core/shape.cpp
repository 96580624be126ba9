#include "core/shape.h"

#include "core/error.h"

namespace moegrad {

void Shape::grow(size_t n) {
  MOEGRAD_CHECK(n <= UINT32_MAX, "Shape: ", n, " entries are too many");
  const size_t grown = std::max<size_t>(n, 2 * capacity());
  int64_t* heap = new int64_t[grown];
  std::copy(begin(), end(), heap);
  delete[] heap_;
  heap_ = heap;
  capacity_ = uint32_t(grown);
}

void Shape::resize(size_t n, int64_t value) {
  reserve(n);
  if (n > size_) std::fill(data() + size_, data() + n, value);
  size_ = uint32_t(n);
}

void Shape::assign(size_t n, int64_t value) {
  clear();
  resize(n, value);
}

Shape::iterator Shape::insert(const_iterator pos, size_t n, int64_t value) {
  const size_t at = size_t(pos - begin());
  open_gap(at, n);
  std::fill(begin() + at, begin() + at + n, value);
  return begin() + at;
}

Shape::iterator Shape::erase(const_iterator first, const_iterator last) {
  const size_t at = size_t(first - begin()), n = size_t(last - first);
  std::copy(begin() + at + n, end(), begin() + at);
  size_ -= uint32_t(n);
  return begin() + at;
}

void Shape::open_gap(size_t at, size_t n) {
  reserve(size_ + n);
  std::copy_backward(begin() + at, end(), end() + n);
  size_ += uint32_t(n);
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  MOEGRAD_CHECK(d >= 0 && d < ndim, op, ": dim ", dim, " out of range for a tensor with ", ndim,
                " dims");
  return d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    MOEGRAD_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                  shape_str(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace moegrad
