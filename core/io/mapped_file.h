// A whole file mapped into memory, for readers that view file bytes without copying them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moegrad {

class MappedFile {
 public:
  // Maps `path` copy-on-write: the file is never modified, and a tensor viewing the mapping that
  // is written in place (an optimizer step on loaded weights) gets private pages instead of a
  // crash.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint8_t* data() const { return data_; }  // null for an empty file
  size_t size() const { return size_; }

 private:
  MappedFile(std::string path, uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  uint8_t* data_;
  size_t size_;
};

}  // namespace moegrad
