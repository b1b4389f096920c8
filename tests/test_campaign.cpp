// Campaign designs: Sobol points against their known first values and the stratification that
// defines a (0, m, 1) sequence in every dimension; Latin hypercubes stratified in every
// dimension.
#include "campaign/campaign.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace caustic;

TEST(Campaign, SobolFirstPointsAndStratification) {
  const auto p = sobolPoints(64, 10);
  // Dimension 1 is van der Corput in Gray-code order: 0, 1/2, 3/4, 1/4, 3/8, 7/8, 5/8, 1/8.
  const double vdc[8] = {0, 0.5, 0.75, 0.25, 0.375, 0.875, 0.625, 0.125};
  for (int i = 0; i < 8; ++i)
    EXPECT_DOUBLE_EQ(p[i][0], vdc[i]) << i;
  // Dimension 2 (s = 1, m = 1): 0, 1/2, 1/4, 3/4.
  const double d2[4] = {0, 0.5, 0.25, 0.75};
  for (int i = 0; i < 4; ++i)
    EXPECT_DOUBLE_EQ(p[i][1], d2[i]) << i;
  // The first 2^k points fall one per interval [j/2^k, (j+1)/2^k) in every dimension.
  for (int k : {2, 4, 6}) {
    const int n = 1 << k;
    for (int d = 0; d < 10; ++d) {
      std::set<int> cells;
      for (int i = 0; i < n; ++i)
        cells.insert(static_cast<int>(p[i][d] * n));
      EXPECT_EQ(static_cast<int>(cells.size()), n) << "dimension " << d + 1 << ", n = " << n;
    }
  }
  // Dimensions 1 and 2 form a (0, m, 2)-net: 16 points, one per 4x4 cell.
  std::set<int> cells;
  for (int i = 0; i < 16; ++i)
    cells.insert(static_cast<int>(p[i][0] * 4) * 4 + static_cast<int>(p[i][1] * 4));
  EXPECT_EQ(cells.size(), 16u);
  EXPECT_THROW(sobolPoints(4, 11), std::invalid_argument);
}

TEST(Campaign, LatinHypercubeStratified) {
  const int n = 37;
  const auto p = latinHypercube(n, 5, 9);
  for (int d = 0; d < 5; ++d) {
    std::set<int> cells;
    for (int i = 0; i < n; ++i) {
      EXPECT_GE(p[i][d], 0.0);
      EXPECT_LT(p[i][d], 1.0);
      cells.insert(static_cast<int>(p[i][d] * n));
    }
    EXPECT_EQ(static_cast<int>(cells.size()), n);
  }
  EXPECT_EQ(latinHypercube(n, 5, 9), p); // seeded
  EXPECT_NE(latinHypercube(n, 5, 10), p);
}
