#include "core/tensor.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

TEST(TensorBasics, FactoriesFillShapeAndDtype) {
  EXPECT_EQ(zeros({2, 3}).to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(ones({4}, DType::I32).to_vector<int32_t>(), std::vector<int32_t>(4, 1));
  EXPECT_EQ(full({2}, -2.5, DType::F64).to_vector<double>(), (std::vector<double>{-2.5, -2.5}));
  EXPECT_EQ(arange(2, 11, 3).to_vector<int64_t>(), (std::vector<int64_t>{2, 5, 8}));
  EXPECT_EQ(arange(5, 0, -2).to_vector<int64_t>(), (std::vector<int64_t>{5, 3, 1}));
  EXPECT_EQ(arange(0).numel(), 0);
  Tensor s = scalar_tensor(3.0);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item(), 3.0);
  EXPECT_THROW(from_vector<float>({1, 2, 3}, {2, 2}), Error);
}

TEST(TensorBasics, PrintingShowsShapeDtypeAndValues) {
  Tensor t = arange(6, DType::I64).view({2, 3});
  EXPECT_EQ(t.str(), "Tensor([2, 3], int64, cpu)\n[[0, 1, 2],\n [3, 4, 5]]");
  EXPECT_EQ(full({2}, 0.5).str(), "Tensor([2], float32, cpu)\n[0.5, 0.5]");
  // Large tensors are summarised, not dumped.
  std::string big = zeros({100, 100}).str();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 400u);
  EXPECT_EQ(Tensor().str(), "Tensor(undefined)");
}

TEST(TensorBasics, DeviceErrorsAreClear) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  try {
    zeros({2}, DType::F32, Device::cuda(0));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
  }
}

TEST(TensorBasics, DeviceNamesParse) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  // An index past int's range is refused as a name, not thrown out of std::stoi.
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:+1", "cuda:1x", "cuda:99999999999"}) {
    try {
      Device::parse(bad);
      ADD_FAILURE() << bad << " parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("invalid device '") + bad + "'"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace moegrad
