// FNV-1a 64-bit checksums: cheap, dependency-free detection of truncated or corrupted files
// (not a defence against tampering).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moegrad {

class Fnv1a64 {
 public:
  void update(const void* data, size_t nbytes);
  uint64_t digest() const { return hash_; }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

uint64_t fnv1a64(const void* data, size_t nbytes);
// Checksum of a whole file, read in blocks; throws naming the file when it cannot be read.
uint64_t fnv1a64_file(const std::string& path);
// 16 lower-case hex digits, as checksums are written in JSON.
std::string hex64(uint64_t value);

}  // namespace moegrad
