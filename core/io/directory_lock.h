// A lock that keeps two processes from writing one directory at once: two runs of the same config
// started together, or a resume while the run still goes on, would interleave their metrics and
// checkpoints without a word.
#pragma once
#include <string>

namespace moegrad {

class DirectoryLock {
 public:
  // Takes an exclusive flock(2) on the directory `dir`; throws, naming `dir` and
  // `what` ("run directory"), when another process holds it. The kernel drops the lock when
  // the holder exits, killed or not, so no stale lock is ever left. On a file system without
  // flock the directory is used unlocked.
  DirectoryLock(const std::string& dir, const std::string& what);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace moegrad
