#include "core/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace moegrad {

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), tmp_path_(temporary_name(path_)) {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create temporary file", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFile::fail(const char* what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_path_.c_str());
  throw Error(detail::concat("writing ", path_, ": ", what, " ", tmp_path_, ": ",
                             std::strerror(err)));
}

void AtomicFile::write(const void* data, size_t nbytes) {
  MOEGRAD_CHECK(fd_ >= 0 && !committed_, "writing ", path_, ": file already committed or failed");
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    ssize_t n = ::write(fd_, p, nbytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write to", errno);
    p += n;
    nbytes -= size_t(n);
  }
}

void AtomicFile::write_at(uint64_t offset, const void* data, size_t nbytes) {
  MOEGRAD_CHECK(fd_ >= 0 && !committed_, "writing ", path_, ": file already committed or failed");
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    ssize_t n = ::pwrite(fd_, p, nbytes, off_t(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write to", errno);
    p += n;
    offset += uint64_t(n);
    nbytes -= size_t(n);
  }
}

void AtomicFile::commit() {
  MOEGRAD_CHECK(fd_ >= 0 && !committed_, "writing ", path_, ": file already committed or failed");
  if (::fsync(fd_) != 0) fail("fsync of", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close of", errno);
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) fail("rename of", errno);
  committed_ = true;
  std::string dir = std::filesystem::path(path_).parent_path().string();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  MOEGRAD_CHECK(dir_fd >= 0, "writing ", path_, ": cannot open its directory to fsync: ",
                std::strerror(errno));
  int rc = ::fsync(dir_fd);
  int err = errno;
  ::close(dir_fd);
  MOEGRAD_CHECK(rc == 0, "writing ", path_, ": fsync of its directory: ", std::strerror(err));
}

void write_file_atomically(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

namespace {

constexpr const char* kTemporary = ".moegrad-tmp.";
constexpr const char* kRetired = ".moegrad-old.";

// The pid of a temporary or retired name, or -1 when `name` is neither.
long writer_pid(const std::string& name) {
  for (const std::string infix : {kTemporary, kRetired}) {
    const size_t at = name.rfind(infix);
    if (at == std::string::npos) continue;
    const std::string digits = name.substr(at + infix.size());
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    return std::stol(digits);
  }
  return -1;
}

}  // namespace

std::string temporary_name(const std::string& path) {
  return path + kTemporary + std::to_string(::getpid());
}

std::string retired_name(const std::string& path) {
  return path + kRetired + std::to_string(::getpid());
}

int64_t remove_abandoned_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> abandoned;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const long pid = writer_pid(it->path().filename().string());
    // kill(pid, 0) fails with ESRCH only when no such process exists.
    if (pid <= 0 || !(::kill(pid_t(pid), 0) != 0 && errno == ESRCH)) continue;
    abandoned.push_back(it->path());
    if (it->is_directory()) it.disable_recursion_pending();
  }
  MOEGRAD_CHECK(!ec, "cannot list ", dir, ": ", ec.message());
  for (const fs::path& p : abandoned) {
    fs::remove_all(p, ec);
    MOEGRAD_CHECK(!ec, "cannot delete the abandoned temporary ", p.string(), ": ", ec.message());
  }
  return int64_t(abandoned.size());
}

}  // namespace moegrad
