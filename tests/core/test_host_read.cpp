#include "core/host_read.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(HostRead, ReadsTheValuesInElementOrder) {
  const Tensor t = from_vector<int64_t>({4, -1, 9, 0, 2, 5}, {2, 3}).t();
  const HostRead read(t);
  EXPECT_TRUE(read.defined());
  EXPECT_EQ(read.values(), (std::vector<int64_t>{4, 0, -1, 2, 9, 5}));
  const HostRead copy = read;  // shares the values
  EXPECT_EQ(&copy.values(), &read.values());
  EXPECT_TRUE(HostRead(zeros({0}, DType::I64)).values().empty());
}

TEST(HostRead, NamesWhatItCannotRead) {
  EXPECT_FALSE(HostRead().defined());
  EXPECT_EQ(testing::error_of([] { HostRead().values(); }),
            "HostRead: values() of a HostRead that reads nothing");
  EXPECT_EQ(testing::error_of([] { const HostRead r(zeros({2}, DType::I32)); }),
            "HostRead: expected an int64 tensor, got int32");
  EXPECT_EQ(testing::error_of([] { const HostRead r{Tensor()}; }),
            "HostRead: source tensor is undefined");
}

}  // namespace
}  // namespace moegrad
