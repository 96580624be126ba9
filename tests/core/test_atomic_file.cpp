// Atomic writes, and the sweep of what a killed writer left behind.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/io/atomic_file.h"

namespace moegrad {
namespace {

namespace fs = std::filesystem;

// The pid of a process that has exited and been reaped.
pid_t finished_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

void touch(const fs::path& p) { std::ofstream(p) << "x"; }

TEST(AtomicFile, ReplacesTheTargetAndLeavesNoTemporary) {
  const fs::path dir = fs::temp_directory_path() / ("moegrad_atomic_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_file_atomically((dir / "a.json").string(), "old");
  write_file_atomically((dir / "a.json").string(), "new");
  std::ifstream in(dir / "a.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

TEST(AtomicFile, SweepRemovesOnlyTheTemporariesOfFinishedWriters) {
  const fs::path dir = fs::temp_directory_path() / ("moegrad_sweep_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "checkpoints" / ".step-00000004.tmp.1");
  const std::string dead = std::to_string(finished_pid());
  const std::string alive = std::to_string(::getpid());
  // Left by a killed writer: a file, an unfinished checkpoint, a directory being replaced.
  touch(dir / ("summary.json.tmp." + dead));
  fs::create_directories(dir / "checkpoints" / (".step-00000004.tmp." + dead));
  touch(dir / "checkpoints" / (".step-00000004.tmp." + dead) / ("state.json.tmp." + dead));
  fs::create_directories(dir / ("model.old." + dead));
  touch(dir / ("model.old." + dead) / "config.json");
  // Kept: a running writer's temporaries, and names that only look like temporaries.
  touch(dir / ("metrics.jsonl.tmp." + alive));
  touch(dir / "notes.tmp.");
  touch(dir / "notes.tmp.12a");
  touch(dir / "summary.json");

  EXPECT_EQ(remove_abandoned_temporaries(dir.string()), 3);
  EXPECT_FALSE(fs::exists(dir / ("summary.json.tmp." + dead)));
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / (".step-00000004.tmp." + dead)));
  EXPECT_FALSE(fs::exists(dir / ("model.old." + dead)));
  for (const std::string kept : {"metrics.jsonl.tmp." + alive, std::string("notes.tmp."),
                                 std::string("notes.tmp.12a"), std::string("summary.json")})
    EXPECT_TRUE(fs::exists(dir / kept)) << kept;
  // pid 1 always runs.
  EXPECT_TRUE(fs::exists(dir / "checkpoints" / ".step-00000004.tmp.1"));
  EXPECT_EQ(remove_abandoned_temporaries(dir.string()), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moegrad
