#include <utility>
#include <vector>

#include "core/shape.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

std::vector<int64_t> entries(const Shape& s) { return {s.begin(), s.end()}; }

// Shape keeps up to kInline entries in place and the rest on the heap; every edit has to give
// what std::vector would, on either side of that line and across it.
TEST(Shape, EditsMatchAVectorInPlaceAndOnTheHeap) {
  for (size_t n : {size_t(0), size_t(1), Shape::kInline - 1, Shape::kInline, Shape::kInline + 3}) {
    Shape s;
    std::vector<int64_t> v;
    for (size_t i = 0; i < n; ++i) {
      s.push_back(int64_t(i) * 7);
      v.push_back(int64_t(i) * 7);
    }
    ASSERT_EQ(entries(s), v) << n;
    s.insert(s.begin(), -1);
    v.insert(v.begin(), -1);
    s.insert(s.end(), {8, 9});
    v.insert(v.end(), {8, 9});
    s.insert(s.begin() + 1, size_t(3), int64_t(5));
    v.insert(v.begin() + 1, size_t(3), int64_t(5));
    ASSERT_EQ(entries(s), v) << n;
    s.insert(s.begin() + 2, s.begin(), s.end());  // from itself, as vector allows
    const std::vector<int64_t> w = v;
    v.insert(v.begin() + 2, w.begin(), w.end());
    ASSERT_EQ(entries(s), v) << n;
    s.erase(s.begin() + 1, s.begin() + 4);
    v.erase(v.begin() + 1, v.begin() + 4);
    s.erase(s.end() - 1);
    v.erase(v.end() - 1);
    s.pop_back();
    v.pop_back();
    ASSERT_EQ(entries(s), v) << n;
    s.resize(s.size() + 2, 4);
    v.resize(v.size() + 2, 4);
    s.resize(3);
    v.resize(3);
    ASSERT_EQ(entries(s), v) << n;
    EXPECT_EQ(s.front(), v.front());
    EXPECT_EQ(s.back(), v.back());
  }
}

TEST(Shape, CopiesAndMovesKeepTheEntriesAndLeaveTheSourceUsable) {
  for (size_t n : {size_t(2), Shape::kInline + 2}) {
    Shape a(n, 3);
    a[0] = 1;
    Shape copy = a;
    EXPECT_EQ(copy, a);
    copy[1] = 9;
    EXPECT_NE(copy, a) << "a copy shares its entries";
    Shape moved = std::move(a);
    EXPECT_EQ(entries(moved)[0], 1);
    EXPECT_EQ(moved.size(), n);
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, reusable
    a.push_back(4);
    EXPECT_EQ(entries(a), std::vector<int64_t>{4});
    Shape target{5, 6, 7, 8, 9, 10, 11, 12};
    target = std::move(moved);
    EXPECT_EQ(target.size(), n);
    target = copy;
    EXPECT_EQ(target, copy);
    target = {2, 3};
    EXPECT_EQ(entries(target), (std::vector<int64_t>{2, 3}));
  }
  const std::vector<int64_t> v{4, 5, 6};
  EXPECT_EQ(Shape(v), (Shape{4, 5, 6}));
  EXPECT_EQ(Shape(v.begin() + 1, v.end()), (Shape{5, 6}));
  EXPECT_NE((Shape{1, 2}), (Shape{1, 2, 3}));
}

}  // namespace
}  // namespace moegrad
