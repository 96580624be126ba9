// libFuzzer target: any byte string, written to a file, either opens as a safetensors file whose
// every tensor can then be read, or is rejected with moegrad::Error.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader takes a path; tmpfs keeps the write per input cheap.
  static const std::string path =
      (::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") +
      std::string("/moegrad_fuzz_safetensors_") + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    moegrad::SafetensorsFile file(path);
    for (const std::string& name : file.names()) {
      try {
        moegrad::Tensor t = file.tensor(name);
        volatile uint8_t sink = 0;
        const uint8_t* bytes = static_cast<const uint8_t*>(t.data_ptr());
        size_t nbytes = size_t(t.numel()) * moegrad::dtype_size(t.dtype());
        for (size_t i = 0; i < nbytes; ++i) sink = sink ^ bytes[i];
      } catch (const moegrad::Error&) {
      }
    }
  } catch (const moegrad::Error&) {
  }
  ::unlink(path.c_str());
  return 0;
}
