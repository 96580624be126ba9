// A file written under a temporary name and renamed over its target only once complete, so that
// a crash or an error never leaves a half-written checkpoint where a good one was.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moegrad {

class AtomicFile {
 public:
  // Creates temporary_name(path) in the target's directory (a rename is atomic only within one
  // file system).
  explicit AtomicFile(std::string path);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t nbytes);
  // Overwrites bytes already written, for a header whose fields are known only at the end of a
  // streamed write.
  void write_at(uint64_t offset, const void* data, size_t nbytes);
  // fsync, rename over the target, fsync the directory so the rename itself is durable.
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const char* what, int err);
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `text` into `path`, atomically.
void write_file_atomically(const std::string& path, const std::string& text);

// `<path>.moegrad-tmp.<pid>`: where this process writes what becomes `path` by a rename (an
// AtomicFile, a checkpoint's or model's directory).
std::string temporary_name(const std::string& path);
// `<path>.moegrad-old.<pid>`: what a directory is renamed to before it is deleted, so that a
// kill while deleting never leaves it half-deleted under its own name.
std::string retired_name(const std::string& path);

// Deletes, anywhere under `dir`, what a killed writer left: temporary and retired names whose
// process <pid> no longer runs. Returns how many it deleted.
int64_t remove_abandoned_temporaries(const std::string& dir);

}  // namespace moegrad
