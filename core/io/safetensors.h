// The safetensors checkpoint format (HuggingFace): reading, validated before any byte is used,
// and atomic writing; single files and sharded checkpoints with their index.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace moegrad {

class MappedFile;

struct SafetensorsInfo {
  DType dtype;
  Shape shape;
  uint64_t begin;  // byte range in the data buffer, [begin, end)
  uint64_t end;
};

class SafetensorsFile {
 public:
  // Maps `path` and validates its header and every entry; throws moegrad::Error naming the path,
  // the tensor and what was expected vs found.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }  // in data order
  bool contains(const std::string& name) const { return infos_.count(name) > 0; }
  const SafetensorsInfo& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A CPU tensor viewing the mapped bytes (no copy) when they are aligned for the dtype, else a
  // copy. The view keeps the mapping alive.
  Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  uint8_t* buffer_ = nullptr;
  std::vector<std::string> names_;
  std::map<std::string, SafetensorsInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any device, any strides) in the given order, atomically.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// A sharded checkpoint: `model.safetensors.index.json` and the shards it names, all validated
// when opened (headers only: tensor bytes are read from the mappings on use).
class SafetensorsIndex {
 public:
  explicit SafetensorsIndex(const std::string& index_path);

  const std::vector<std::string>& names() const { return names_; }  // sorted
  bool contains(const std::string& name) const { return shard_of_.count(name) > 0; }
  const std::string& shard_of(const std::string& name) const;  // file name of the shard
  uint64_t total_size() const { return total_size_; }
  const SafetensorsInfo& info(const std::string& name) const;
  Tensor tensor(const std::string& name) const;

 private:
  const SafetensorsFile& shard_holding(const std::string& name) const;
  std::string path_;
  uint64_t total_size_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, std::string> shard_of_;
  std::map<std::string, std::unique_ptr<SafetensorsFile>> shards_;
};

// Writes `dir`/model-00001-of-0000N.safetensors... (a new shard starts when the next tensor would
// push the current one past `max_shard_bytes` of tensor data) and `dir`/model.safetensors.index.json,
// each atomically, the index last.
void save_sharded(const std::string& dir,
                  const std::vector<std::pair<std::string, Tensor>>& tensors,
                  uint64_t max_shard_bytes,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace moegrad
