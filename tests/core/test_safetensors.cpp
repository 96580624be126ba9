#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/io/safetensors.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::expect_error;
using testing::random_tensor;
using Named = std::vector<std::pair<std::string, Tensor>>;

// A fresh directory per test, removed afterwards.
class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("moegrad_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string bytes_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), size_t(c.numel()) * dtype_size(c.dtype()));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

// A file with `header` (length prefix computed) followed by `data`.
std::string assemble(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

Named every_dtype() {
  return {{"f32", random_tensor({3, 4}, 1, DType::F32)},
          {"f64", random_tensor({5}, 2, DType::F64)},
          {"bf16", random_tensor({2, 3}, 3, DType::F32).to(DType::BF16)},
          {"f16", random_tensor({7}, 4, DType::F32).to(DType::F16)},
          {"i32", arange(-3, 6, 1, DType::I32)},
          {"i64", arange(10, DType::I64).view({2, 5})},
          {"bool", from_vector<int32_t>({1, 0, 1}, {3}).to(DType::Bool)},
          {"scalar", scalar_tensor(2.5, DType::F64)},
          {"empty", zeros({0, 3}, DType::F32)}};
}

TEST_F(Safetensors, RoundTripsEveryDtypeWithMetadata) {
  Named tensors = every_dtype();
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"step", "12"}};
  save_safetensors(path("a.safetensors"), tensors, metadata);
  SafetensorsFile file(path("a.safetensors"));
  EXPECT_EQ(file.metadata(), metadata);
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  EXPECT_EQ(file.names(), names);  // data order is the order given
  for (const auto& [name, t] : tensors) {
    Tensor back = file.tensor(name);
    EXPECT_EQ(back.dtype(), t.dtype()) << name;
    EXPECT_EQ(back.shape(), t.shape()) << name;
    EXPECT_EQ(file.info(name).shape, t.shape()) << name;
    EXPECT_EQ(bytes_of(back), bytes_of(t)) << name;
  }
  EXPECT_EQ(read_bytes(path("a.safetensors")).substr(8).find('{'), 0u);
  EXPECT_EQ(SafetensorsFile(path("a.safetensors")).tensor("scalar").item(), 2.5);
}

TEST_F(Safetensors, HeaderIsPaddedToEightBytes) {
  save_safetensors(path("a.safetensors"), {{"x", ones({1})}});
  std::string bytes = read_bytes(path("a.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 4);
  EXPECT_EQ(bytes[8 + n - 1] == ' ' || bytes[8 + n - 1] == '}', true);
}

TEST_F(Safetensors, WritesNonContiguousInputsAsTheirValues) {
  Tensor base = random_tensor({4, 6}, 7, DType::F32);
  Named tensors = {{"t", base.t()}, {"narrow", base.narrow(1, 2, 3)}};
  save_safetensors(path("a.safetensors"), tensors);
  SafetensorsFile file(path("a.safetensors"));
  EXPECT_EQ(file.tensor("t").shape(), (Shape{6, 4}));
  EXPECT_EQ(bytes_of(file.tensor("t")), bytes_of(base.t()));
  EXPECT_EQ(bytes_of(file.tensor("narrow")), bytes_of(base.narrow(1, 2, 3)));
}

TEST_F(Safetensors, AlignedTensorsViewTheMappingAndOutliveTheFile) {
  Tensor x = random_tensor({16}, 3, DType::F32);
  save_safetensors(path("a.safetensors"), {{"x", x}});
  Tensor a, b;
  {
    SafetensorsFile file(path("a.safetensors"));
    a = file.tensor("x");
    b = file.tensor("x");
  }
  // Two storages over the same bytes: neither call copied.
  EXPECT_FALSE(a.shares_storage(b));
  EXPECT_EQ(a.data_ptr(), b.data_ptr());
  EXPECT_EQ(bytes_of(a), bytes_of(x));
  // Writes go to private pages, never to the file.
  a.fill_(0.0);
  EXPECT_EQ(bytes_of(SafetensorsFile(path("a.safetensors")).tensor("x")), bytes_of(x));
}

TEST_F(Safetensors, ReadsAHandwrittenFile) {
  // 1.5f, -2.0f little-endian; bf16 1.0 = 0x3f80; i64 7; bool true.
  std::string data = std::string("\x00\x00\xc0\x3f\x00\x00\x00\xc0", 8) +
                     std::string("\x80\x3f", 2) + std::string("\x07\0\0\0\0\0\0\0", 8) +
                     std::string("\x01", 1);
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("c":{"dtype":"I64","shape":[],"data_offsets":[10,18]},)"
      R"("d":{"dtype":"BOOL","shape":[1,1],"data_offsets":[18,19]}}   )";
  write_bytes(path("h.safetensors"), assemble(header, data));
  SafetensorsFile file(path("h.safetensors"));
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.tensor("a").to_vector<float>(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(file.tensor("b").to(DType::F32).item(), 1.0);
  EXPECT_EQ(file.tensor("c").shape(), Shape{});
  EXPECT_EQ(file.tensor("c").item(), 7.0);  // at offset 10: unaligned, so copied
  EXPECT_EQ(file.tensor("d").shape(), (Shape{1, 1}));
  EXPECT_EQ(file.tensor("d").item(), 1.0);
}

// Writes `header` + `data` and expects opening it to fail naming the file and `problem`.
void expect_open_error(const std::string& path, const std::string& bytes,
                       const std::string& problem) {
  write_bytes(path, bytes);
  std::string message = error_of([&] { SafetensorsFile file(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find(problem), std::string::npos) << "expected '" << problem << "' in: " << message;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

TEST_F(Safetensors, RejectsTruncatedFile) {
  expect_open_error(path("a"), "\x02\0\0", "expected at least 8 bytes");
}

TEST_F(Safetensors, RejectsHeaderLengthPastEnd) {
  expect_open_error(path("a"), u64_le(100) + "{}", "header length 100 runs past the end");
}

TEST_F(Safetensors, RejectsHugeHeaderLength) {
  expect_open_error(path("a"), u64_le(~0ull) + "{}", "runs past the end");
}

TEST_F(Safetensors, RejectsBadJson) {
  expect_open_error(path("a"), assemble("{\"a\":{\"dtype\"", ""), "invalid JSON");
}

TEST_F(Safetensors, RejectsInvalidUtf8) {
  expect_open_error(path("a"), assemble("{\"\xff\xfe\":{}}", ""), "invalid JSON");
}

TEST_F(Safetensors, RejectsDeepNesting) {
  expect_open_error(path("a"), assemble(R"({"a":[[[[[[[[1]]]]]]]]})", ""), "JSON nests deeper");
}

TEST_F(Safetensors, RejectsNonObjectHeader) {
  expect_open_error(path("a"), assemble("[1, 2]", ""), "starting with '{'");
}

TEST_F(Safetensors, RejectsUnknownDtype) {
  expect_open_error(path("a"), assemble(std::string("{") + entry("w", "FLOAT", "[1]", "[0,4]") + "}", "abcd"),
                    "tensor 'w': unknown dtype 'FLOAT'");
}

TEST_F(Safetensors, RejectsUnsupportedDtype) {
  expect_open_error(path("a"), assemble(std::string("{") + entry("w", "U8", "[1]", "[0,1]") + "}", "a"),
                    "tensor 'w': unsupported dtype U8");
}

TEST_F(Safetensors, RejectsNegativeShape) {
  expect_open_error(path("a"), assemble(std::string("{") + entry("w", "F32", "[-1]", "[0,4]") + "}", "abcd"),
                    "tensor 'w': expected every shape entry to be non-negative, found -1");
}

TEST_F(Safetensors, RejectsShapeOverflow) {
  expect_open_error(
      path("a"),
      assemble(std::string("{") + entry("w", "F32", "[4294967296,4294967296]", "[0,4]") + "}", "abcd"),
      "tensor 'w': shape [4294967296,4294967296] has more elements than fit in 64 bits");
}

TEST_F(Safetensors, RejectsEmptyShapeWhoseStridesOverflow) {
  expect_open_error(
      path("a"),
      assemble(std::string("{") + entry("w", "F32", "[4294967296,4294967296,0]", "[0,0]") + "}", ""),
      "has more elements than fit in 64 bits");
}

TEST_F(Safetensors, RejectsOffsetsPastEnd) {
  expect_open_error(path("a"), assemble(std::string("{") + entry("w", "F32", "[2]", "[0,8]") + "}", "abcd"),
                    "tensor 'w': data_offsets [0,8] past the end of the 4-byte data buffer");
}

TEST_F(Safetensors, RejectsEndBeforeBegin) {
  expect_open_error(path("a"), assemble(std::string("{") + entry("w", "F32", "[1]", "[4,0]") + "}", "abcd"),
                    "tensor 'w': data_offsets [4,0] end before begin");
}

TEST_F(Safetensors, RejectsSizeMismatch) {
  expect_open_error(path("a"), assemble(std::string("{") + entry("w", "F32", "[2]", "[0,4]") + "}", "abcd"),
                    "tensor 'w': data_offsets [0,4] span 4 bytes, expected 8");
}

TEST_F(Safetensors, RejectsOverlappingRanges) {
  expect_open_error(path("a"),
                    assemble(std::string("{") + entry("a", "F32", "[2]", "[0,8]") + "," +
                                 entry("b", "F32", "[1]", "[4,8]") + "}",
                             "abcdefgh"),
                    "tensor 'b' data_offsets [4, 8) overlap tensor 'a'");
}

TEST_F(Safetensors, RejectsHoleBetweenTensors) {
  expect_open_error(path("a"),
                    assemble(std::string("{") + entry("a", "F32", "[1]", "[0,4]") + "," +
                                 entry("b", "F32", "[1]", "[8,12]") + "}",
                             "abcdefghijkl"),
                    "hole in the data buffer: bytes [4, 8) before tensor 'b'");
}

TEST_F(Safetensors, RejectsTrailingBytes) {
  expect_open_error(path("a"), assemble(std::string("{") + entry("a", "F32", "[1]", "[0,4]") + "}", "abcdefgh"),
                    "hole in the data buffer: bytes [4, 8) at its end");
}

TEST_F(Safetensors, RejectsDuplicateNames) {
  expect_open_error(path("a"),
                    assemble(std::string("{") + entry("a", "F32", "[1]", "[0,4]") + "," +
                                 entry("a", "F32", "[1]", "[4,8]") + "}",
                             "abcdefgh"),
                    "duplicate key 'a'");
}

TEST_F(Safetensors, RejectsMissingAndExtraKeys) {
  expect_open_error(path("a"), assemble(R"({"w":{"dtype":"F32","shape":[1]}})", ""),
                    "tensor 'w': missing 'data_offsets'");
  expect_open_error(path("b"),
                    assemble(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}})", "abcd"),
                    "tensor 'w': unexpected key 'x'");
}

TEST_F(Safetensors, RejectsNonStringMetadata) {
  expect_open_error(path("a"), assemble(R"({"__metadata__":{"step":3}})", ""),
                    "__metadata__ value of 'step' to be a string, found 3");
}

TEST_F(Safetensors, RejectsBoolBytesOtherThanZeroOrOne) {
  write_bytes(path("a"), assemble(std::string("{") + entry("b", "BOOL", "[2]", "[0,2]") + "}", "\x01\x07"));
  SafetensorsFile file(path("a"));
  expect_error([&] { file.tensor("b"); }, "tensor 'b': expected BOOL bytes 0 or 1, found 7");
  expect_error([&] { file.tensor("nope"); }, "no tensor named 'nope'");
}

TEST_F(Safetensors, MissingFileNamesThePath) {
  expect_error([&] { SafetensorsFile file(path("missing.safetensors")); },
               "cannot open " + path("missing.safetensors"));
}

TEST_F(Safetensors, AtomicWriteLeavesNoTemporaryFile) {
  save_safetensors(path("a.safetensors"), {{"x", ones({2})}});
  save_safetensors(path("a.safetensors"), {{"y", zeros({3})}});  // replaces
  EXPECT_EQ(SafetensorsFile(path("a.safetensors")).names(), std::vector<std::string>{"y"});
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(Safetensors, FailedWriteLeavesTargetAndNoTemporaryFile) {
  // The target is a directory: the temporary file is written, then the rename fails.
  fs::create_directories(path("target"));
  write_bytes(path("target/keep"), "x");
  expect_error([&] { save_safetensors(path("target"), {{"x", ones({2})}}); },
               "writing " + path("target") + ": rename");
  EXPECT_EQ(read_bytes(path("target/keep")), "x");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);

  expect_error([&] { save_safetensors(path("no/such/dir/a.safetensors"), {{"x", ones({2})}}); },
               "writing " + path("no/such/dir/a.safetensors") + ": cannot create");

  save_safetensors(path("a.safetensors"), {{"x", ones({2})}});
  std::string before = read_bytes(path("a.safetensors"));
  expect_error([&] { save_safetensors(path("a.safetensors"), {{"x", ones({2})}, {"x", ones({1})}}); },
               "duplicate tensor name 'x'");
  expect_error([&] { save_safetensors(path("a.safetensors"), {{"u", Tensor()}}); },
               "tensor 'u' is undefined");
  EXPECT_EQ(read_bytes(path("a.safetensors")), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

// Seeded random corruptions of a valid file: opening either fails with moegrad::Error or
// succeeds, and then every tensor can be read; nothing else (a crash, another exception).
TEST_F(Safetensors, SurvivesRandomCorruption) {
  save_safetensors(path("valid"),
                   {{"a", random_tensor({2, 3}, 1, DType::F32)},
                    {"b", from_vector<int32_t>({1, 0}, {2}).to(DType::Bool)},
                    {"c", arange(3, DType::I64)},
                    {"d", scalar_tensor(1.0, DType::BF16)}},
                   {{"k", "v"}});
  const std::string valid = read_bytes(path("valid"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, valid.data(), 8);
  // tmpfs when there is one: rewriting a file on disk costs milliseconds.
  const std::string mutated =
      (fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : dir_) /
      ("moegrad_st_mutated_" + std::to_string(::getpid()));
  std::mt19937_64 rng(1234);
  int opened = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = valid;
    switch (rng() % 4) {
      case 0:  // flip a few header bytes
        for (int i = 0, n = 1 + int(rng() % 3); i < n; ++i)
          bytes[8 + rng() % header_len] ^= char(1 + rng() % 255);
        break;
      case 1:  // replace a header byte with a JSON-significant one
        bytes[8 + rng() % header_len] = "{}[],:\"0123456789-. e"[rng() % 21];
        break;
      case 2:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 3: {  // change the header length
        uint64_t n = header_len + (rng() % 33) - 16;
        if (rng() % 8 == 0) n = rng();
        std::memcpy(bytes.data(), &n, 8);
        break;
      }
    }
    write_bytes(mutated, bytes);
    try {
      SafetensorsFile file(mutated);
      for (const std::string& name : file.names()) {
        try {
          bytes_of(file.tensor(name));
        } catch (const Error&) {  // bool bytes other than 0 or 1
        }
      }
      ++opened;
    } catch (const Error&) {
    }
  }
  fs::remove(mutated);
  EXPECT_GT(opened, 0);  // some corruptions (in metadata text) leave a valid file
}

TEST_F(Safetensors, ShardedRoundTrip) {
  Named tensors = every_dtype();
  save_sharded(path("ckpt"), tensors, 40, {{"format", "pt"}});
  EXPECT_TRUE(fs::exists(path("ckpt/model-00001-of-00006.safetensors")));
  EXPECT_TRUE(fs::exists(path("ckpt/model-00004-of-00006.safetensors")));
  SafetensorsIndex index(path("ckpt/model.safetensors.index.json"));
  uint64_t total = 0;
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(index.contains(name)) << name;
    EXPECT_EQ(bytes_of(index.tensor(name)), bytes_of(t)) << name;
    EXPECT_EQ(index.info(name).shape, t.shape()) << name;
    total += uint64_t(t.numel()) * dtype_size(t.dtype());
  }
  EXPECT_EQ(index.total_size(), total);
  EXPECT_EQ(index.names().size(), tensors.size());
  EXPECT_EQ(index.shard_of("f32"), "model-00001-of-00006.safetensors");  // 48 bytes: alone
}

TEST_F(Safetensors, IndexValidatesShardsAndNames) {
  save_safetensors(path("s1.safetensors"), {{"a", ones({1})}});
  auto index_error = [&](const std::string& text) {
    write_bytes(path("index.json"), text);
    return error_of([&] { SafetensorsIndex index(path("index.json")); });
  };
  std::string m = index_error(R"({"weight_map":{"a":"s1.safetensors","a":"s1.safetensors"}})");
  EXPECT_NE(m.find(path("index.json")), std::string::npos) << m;
  EXPECT_NE(m.find("duplicate key 'a'"), std::string::npos) << m;
  m = index_error(R"({"weight_map":{"b":"s1.safetensors"}})");
  EXPECT_NE(m.find("tensor 'b' is mapped to s1.safetensors, which does not contain it"),
            std::string::npos) << m;
  m = index_error(R"({"weight_map":{"a":"s2.safetensors"}})");
  EXPECT_NE(m.find("cannot open " + path("s2.safetensors")), std::string::npos) << m;
  m = index_error(R"({"weight_map":{"a":"../s1.safetensors"}})");
  EXPECT_NE(m.find("expected a file name in the index's directory"), std::string::npos) << m;
  m = index_error(R"({"metadata":{"total_size":-4},"weight_map":{}})");
  EXPECT_NE(m.find("total_size to be non-negative"), std::string::npos) << m;
  m = index_error(R"({"weight_map":[]})");
  EXPECT_NE(m.find("\"weight_map\" object"), std::string::npos) << m;
}

}  // namespace
}  // namespace moegrad
