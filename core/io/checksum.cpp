#include "core/io/checksum.h"

#include <cstdio>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace moegrad {

void Fnv1a64::update(const void* data, size_t nbytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = hash_;
  for (size_t i = 0; i < nbytes; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  hash_ = h;
}

uint64_t fnv1a64(const void* data, size_t nbytes) {
  Fnv1a64 h;
  h.update(data, nbytes);
  return h.digest();
}

uint64_t fnv1a64_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOEGRAD_CHECK(in, "cannot read '", path, "'");
  Fnv1a64 h;
  std::vector<char> block(1 << 20);
  while (in) {
    in.read(block.data(), std::streamsize(block.size()));
    h.update(block.data(), size_t(in.gcount()));
  }
  MOEGRAD_CHECK(in.eof(), "error reading '", path, "'");
  return h.digest();
}

std::string hex64(uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace moegrad
