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

}  // namespace
}  // namespace moegrad
