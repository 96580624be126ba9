// One writer a directory: a second lock is refused while the first is held, and granted after.
#include <unistd.h>

#include <filesystem>
#include <optional>

#include <gtest/gtest.h>

#include "core/io/directory_lock.h"
#include "tests/testing.h"

namespace moegrad {
namespace {

namespace fs = std::filesystem;

TEST(DirectoryLock, ASecondHolderIsRefusedUntilTheFirstLetsGo) {
  const fs::path dir = fs::temp_directory_path() / ("moegrad_lock_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::optional<DirectoryLock> first;
  first.emplace(dir.string(), "run directory");
  testing::expect_error(
      [&] { DirectoryLock(dir.string(), "run directory"); },
      "the run directory " + dir.string() + " is in use by another moegrad process");
  first.reset();
  EXPECT_NO_THROW(DirectoryLock(dir.string(), "run directory"));
  testing::expect_error([&] { DirectoryLock((dir / "missing").string(), "run directory"); },
                        "cannot open the run directory");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moegrad
