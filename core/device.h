// Where a tensor's memory lives: the host or one CUDA device.
#pragma once
#include <cstdint>
#include <string>

namespace moegrad {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0"
  // Parses "cpu", "cuda", "cuda:N"; throws on anything else.
  static Device parse(const std::string& s);
  // As parse(), plus "auto": the first CUDA device when one is present, else the CPU. A CUDA
  // device must exist; the error says whether the build has CUDA and how many devices it sees.
  static Device select(const std::string& s);
};

// True when this build has the CUDA backend and a CUDA device is present and usable.
bool cuda_available();
int cuda_device_count();
bool built_with_cuda();
// Waits until the device has finished its queued work (nothing to wait for on the CPU): for
// timing.
void synchronize(Device device);
// How many times the host has waited for a CUDA device since the process started (0 without
// CUDA): explicit synchronisations and copies to the host. Each drains the device's queue.
int64_t cuda_host_waits();

}  // namespace moegrad
