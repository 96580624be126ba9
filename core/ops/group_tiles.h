// How a grouped GEMM whose row groups are known only on the device spreads its row tiles over a
// grid sized on the host: each group's rows cut into tiles of `tile_rows`, numbered group by group.
// G groups of R rows in all make at most R / tile_rows + G tiles (each group adds at most one
// partial tile), so the host launches that many, and a block past the last tile exits. A grid of
// one block per group and output tile (the weight gradient) takes its groups most rows first.
// Compiled for the host too, so that the schedule is tested on the CPU.
#pragma once
#include <cstdint>

#include "core/half.h"  // MOEGRAD_HD

namespace moegrad::group_tiles {

// The grid's tile count for G groups of R rows: enough for any split of the rows.
MOEGRAD_HD int64_t max_tiles(int64_t rows, int64_t groups, int64_t tile_rows) {
  return (rows + tile_rows - 1) / tile_rows + groups;
}

// Group g's rows are [start[g], start[g + 1]); a decreasing pair (never from group_by_index)
// counts as no rows.
MOEGRAD_HD int64_t group_rows(const int64_t* start, int64_t g) {
  return start[g + 1] > start[g] ? start[g + 1] - start[g] : 0;
}

// tile_start[g] = the first tile of group g, for g in [0, G].
MOEGRAD_HD void tile_starts(const int64_t* start, int64_t groups, int64_t tile_rows,
                            int64_t* tile_start) {
  tile_start[0] = 0;
  for (int64_t g = 0; g < groups; ++g)
    tile_start[g + 1] = tile_start[g] + (group_rows(start, g) + tile_rows - 1) / tile_rows;
}

// Group g's place when the groups run most rows first, ties in index order: a distinct place
// for every group, so order[heavy_first_place(start, G, g)] = g for each g is a permutation. A
// grid whose blocks each stream one group's rows starts the longest blocks first, so skewed
// routing (one expert with several times its share) does not leave them running alone at the end.
MOEGRAD_HD int64_t heavy_first_place(const int64_t* start, int64_t groups, int64_t g) {
  const int64_t rows = group_rows(start, g);
  int64_t place = 0;
  for (int64_t h = 0; h < groups; ++h) {
    const int64_t other = group_rows(start, h);
    place += other > rows || (other == rows && h < g);
  }
  return place;
}

// The group that owns `tile` (< tile_start[G]): the last g in [0, G) with tile_start[g] <= tile,
// which skips the empty groups that share its first tile.
MOEGRAD_HD int64_t group_of_tile(const int64_t* tile_start, int64_t groups, int64_t tile) {
  int64_t lo = 0, hi = groups;  // tile_start[lo] <= tile < tile_start[hi]
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (tile_start[mid] <= tile)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace moegrad::group_tiles
