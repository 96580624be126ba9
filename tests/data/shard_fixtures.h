// Test helpers for token shards: a fresh directory per test and a one-call shard writer.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "data/token_shard.h"

namespace moegrad::data {

using Documents = std::vector<std::pair<std::string, std::vector<int32_t>>>;  // (name, ids)

// A directory named after the running test, emptied before and removed after it.
class ShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("moegrad_shard_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes `docs` to <dir>/<file> and returns the path.
  std::string write_shard(const std::string& file, const std::string& language,
                          int64_t vocab_size, const Documents& docs) const {
    std::string p = path(file);
    TokenShardWriter writer(p, language, vocab_size);
    for (const auto& [name, ids] : docs) writer.add_document(ids, name);
    writer.finish();
    return p;
  }

  std::filesystem::path dir_;
};

}  // namespace moegrad::data
