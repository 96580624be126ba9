#include "core/device.h"

#include <charconv>

#include "core/error.h"

#ifdef MOEGRAD_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace moegrad {

std::string Device::str() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  // Digits only (no sign), and an index that fits an int.
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 &&
      s.find_first_not_of("0123456789", 5) == std::string::npos) {
    int index = 0;
    if (std::from_chars(s.data() + 5, s.data() + s.size(), index).ec == std::errc())
      return cuda(index);
  }
  throw Error("invalid device '" + s + "': expected cpu, cuda or cuda:N");
}

bool built_with_cuda() {
#ifdef MOEGRAD_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef MOEGRAD_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

bool cuda_available() { return cuda_device_count() > 0; }

Device Device::select(const std::string& s) {
  if (s == "auto") return cuda_available() ? cuda(0) : cpu();
  const Device d = [&] {
    try {
      return parse(s);
    } catch (const Error&) {
      throw Error("invalid device '" + s + "': expected cpu, cuda, cuda:N or auto");
    }
  }();
  MOEGRAD_CHECK(d.is_cpu() || d.index < cuda_device_count(), "device ", s,
                ": no such CUDA device (", built_with_cuda() ? "" : "this build has no CUDA; ",
                cuda_device_count(), " present)");
  return d;
}

int64_t cuda_host_waits() {
#ifdef MOEGRAD_WITH_CUDA
  return cuda::host_waits();
#else
  return 0;
#endif
}

void synchronize(Device device) {
#ifdef MOEGRAD_WITH_CUDA
  if (device.is_cuda()) cuda::synchronize(device.index);
#else
  (void)device;
#endif
}

}  // namespace moegrad
