#include "core/io/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace moegrad {

DirectoryLock::DirectoryLock(const std::string& dir, const std::string& what) {
  fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  MOEGRAD_CHECK(fd_ >= 0, "cannot open the ", what, " ", dir, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  const int err = errno;
  if (err != EWOULDBLOCK) return;  // no flock here (some network file systems): unlocked
  ::close(fd_);
  fd_ = -1;
  throw Error(detail::concat("the ", what, " ", dir,
                             " is in use by another moegrad process; wait for it to finish or "
                             "stop it, or choose another directory"));
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace moegrad
