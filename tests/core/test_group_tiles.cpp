#include <algorithm>
#include <random>
#include <vector>

#include "core/ops/group_tiles.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

// Every row of every group lands in exactly one tile of its own group, within the grid the host
// sizes without knowing the groups: empty groups (first, last, in runs), one group taking all rows,
// a group of exactly a tile, and random splits.
TEST(GroupTiles, EveryRowInOneTileOfItsGroupWithinTheGrid) {
  std::vector<std::vector<int64_t>> layouts = {
      {0, 0, 5, 0, 0, 128, 129, 0, 0}, {300}, {0, 0, 0, 300}, {128, 0, 1, 127, 256}, {0}};
  std::mt19937 gen(7);
  for (int i = 0; i < 20; ++i) {
    std::vector<int64_t> rows(size_t(1 + gen() % 100));
    for (int64_t& r : rows) r = gen() % 4 == 0 ? 0 : int64_t(gen() % 300);
    layouts.push_back(rows);
  }
  for (int64_t tile_rows : {1, 4, 128}) {
    for (const std::vector<int64_t>& rows : layouts) {
      const int64_t groups = int64_t(rows.size());
      std::vector<int64_t> start(rows.size() + 1, 0), tile_start(rows.size() + 1);
      for (size_t g = 0; g < rows.size(); ++g) start[g + 1] = start[g] + rows[g];
      const int64_t total = start.back();
      group_tiles::tile_starts(start.data(), groups, tile_rows, tile_start.data());
      SCOPED_TRACE(::testing::Message()
                   << groups << " groups, " << total << " rows, tiles of " << tile_rows);
      ASSERT_LE(tile_start.back(), group_tiles::max_tiles(total, groups, tile_rows));
      std::vector<int> owner(size_t(total), -1);
      for (int64_t tile = 0; tile < tile_start.back(); ++tile) {
        const int64_t g = group_tiles::group_of_tile(tile_start.data(), groups, tile);
        ASSERT_TRUE(g >= 0 && g < groups);
        const int64_t row0 = start[size_t(g)] + (tile - tile_start[size_t(g)]) * tile_rows;
        ASSERT_LT(row0, start[size_t(g) + 1]) << "tile " << tile << " of group " << g;
        for (int64_t r = row0; r < std::min(row0 + tile_rows, start[size_t(g) + 1]); ++r) {
          ASSERT_EQ(owner[size_t(r)], -1) << "row " << r << " in two tiles";
          owner[size_t(r)] = int(g);
        }
      }
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t r = start[size_t(g)]; r < start[size_t(g) + 1]; ++r)
          ASSERT_EQ(owner[size_t(r)], g) << "row " << r;
    }
  }
}

// A decreasing pair of starts (never made by group_by_index) gives its group no tile rather than a
// negative count that would shift every later group's tiles.
TEST(GroupTiles, ADecreasingPairCountsAsNoRows) {
  const int64_t start[] = {0, 10, 4, 12};
  int64_t tile_start[4];
  group_tiles::tile_starts(start, 3, 4, tile_start);
  EXPECT_EQ(std::vector<int64_t>(tile_start, tile_start + 4), (std::vector<int64_t>{0, 3, 3, 5}));
}

// The places of the most-rows-first order: a permutation, rows never increasing along it, ties in
// index order, a decreasing pair of starts as no rows.
TEST(GroupTiles, HeavyFirstPlacesArePermutationsByRows) {
  std::vector<std::vector<int64_t>> starts = {{0}, {0, 5}, {0, 0, 0, 0}, {0, 10, 4, 12}};
  std::mt19937 gen(11);
  for (int i = 0; i < 20; ++i) {
    std::vector<int64_t> start(size_t(2 + gen() % 200), 0);
    for (size_t g = 1; g < start.size(); ++g) start[g] = start[g - 1] + int64_t(gen() % 6) * 100;
    starts.push_back(start);
  }
  for (const std::vector<int64_t>& start : starts) {
    const int64_t groups = int64_t(start.size()) - 1;
    std::vector<int64_t> order(size_t(groups), -1);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t place = group_tiles::heavy_first_place(start.data(), groups, g);
      ASSERT_TRUE(place >= 0 && place < groups);
      ASSERT_EQ(order[size_t(place)], -1) << "two groups at place " << place;
      order[size_t(place)] = g;
    }
    for (int64_t i = 1; i < groups; ++i) {
      const int64_t a = group_tiles::group_rows(start.data(), order[size_t(i - 1)]);
      const int64_t b = group_tiles::group_rows(start.data(), order[size_t(i)]);
      ASSERT_TRUE(a > b || (a == b && order[size_t(i - 1)] < order[size_t(i)]))
          << "places " << i - 1 << " and " << i;
    }
  }
  const int64_t start[] = {0, 10, 4, 12};
  EXPECT_EQ(group_tiles::heavy_first_place(start, 3, 0), 0);  // 10 rows
  EXPECT_EQ(group_tiles::heavy_first_place(start, 3, 2), 1);  // 8 rows
  EXPECT_EQ(group_tiles::heavy_first_place(start, 3, 1), 2);  // none
}

}  // namespace
}  // namespace moegrad
