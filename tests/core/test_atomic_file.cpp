// Atomic writes, and the sweep of what a killed writer left behind.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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
  const fs::path checkpoints = dir / "checkpoints";
  fs::create_directories(checkpoints);
  const std::string dead = std::to_string(finished_pid());
  // Left by a killed writer: a file, an unfinished checkpoint, a directory being deleted.
  touch(dir / ("summary.json.moegrad-tmp." + dead));
  const fs::path unfinished = checkpoints / (".step-00000004.moegrad-tmp." + dead);
  fs::create_directories(unfinished);
  touch(unfinished / ("trainer_state.json.moegrad-tmp." + dead));
  fs::create_directories(dir / ("model.moegrad-old." + dead));
  touch(dir / ("model.moegrad-old." + dead) / "config.json");
  // Kept: a running writer's temporaries (this process's; pid 1's), and names that only look
  // like temporaries, a user's among them.
  touch(temporary_name((dir / "metrics.jsonl").string()));
  fs::create_directories(checkpoints / ".step-00000008.moegrad-tmp.1");
  const std::vector<std::string> lookalikes = {"notes.moegrad-tmp.", "notes.moegrad-tmp.12a",
                                               "notes.old." + dead, "notes.tmp." + dead};
  for (const std::string& name : lookalikes) touch(dir / name);

  EXPECT_EQ(remove_abandoned_temporaries(dir.string()), 3);
  EXPECT_FALSE(fs::exists(dir / ("summary.json.moegrad-tmp." + dead)));
  EXPECT_FALSE(fs::exists(unfinished));
  EXPECT_FALSE(fs::exists(dir / ("model.moegrad-old." + dead)));
  EXPECT_TRUE(fs::exists(temporary_name((dir / "metrics.jsonl").string())));
  EXPECT_TRUE(fs::exists(checkpoints / ".step-00000008.moegrad-tmp.1"));
  for (const std::string& name : lookalikes) EXPECT_TRUE(fs::exists(dir / name)) << name;
  EXPECT_EQ(remove_abandoned_temporaries(dir.string()), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moegrad
