#include "core/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io/atomic_file.h"
#include "core/io/mapped_file.h"

namespace moegrad {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is viewed without byte swapping");

using json = nlohmann::json;

// Larger headers are refused before parsing: the reference implementation's limit.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A safetensors header nests three deep ({name: {shape: [..]}}); deeper is hostile input.
constexpr int kMaxJsonDepth = 4;

const char* safetensors_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::Bool: return "BOOL";
  }
  throw Error("safetensors: invalid dtype");
}

// Parses JSON text, rejecting duplicate keys (nlohmann would silently keep the last one) and
// deep nesting. `where` starts every error message.
json parse_strict(const char* first, const char* last, const std::string& where) {
  std::vector<std::set<std::string>> open_objects;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    MOEGRAD_CHECK(depth <= kMaxJsonDepth, where, ": JSON nests deeper than ", kMaxJsonDepth,
                  " levels");
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end) open_objects.pop_back();
    if (event == json::parse_event_t::key) {
      const std::string& key = parsed.get_ref<const std::string&>();
      MOEGRAD_CHECK(open_objects.back().insert(key).second, where, ": duplicate key '", key,
                    "'");
    }
    return true;
  };
  try {
    return json::parse(first, last, on_event);
  } catch (const json::exception& e) {
    throw Error(detail::concat(where, ": invalid JSON: ", e.what()));
  }
}

// A non-negative integer that fits in uint64, or throws naming `what`.
uint64_t as_count(const json& v, const std::string& where, const char* what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  MOEGRAD_CHECK(!v.is_number_integer(), where, ": expected ", what,
                " to be non-negative, found ", v.dump());
  throw Error(detail::concat(where, ": expected ", what, " to be an integer, found ", v.dump()));
}

DType parse_dtype(const json& v, const std::string& where) {
  MOEGRAD_CHECK(v.is_string(), where, ": expected dtype to be a string, found ", v.dump());
  const std::string& s = v.get_ref<const std::string&>();
  for (DType t : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64,
                  DType::Bool}) {
    if (s == safetensors_name(t)) return t;
  }
  static const std::set<std::string> unsupported = {"U8",  "I8",  "I16",     "U16",
                                                    "U32", "U64", "F8_E4M3", "F8_E5M2"};
  MOEGRAD_CHECK(!unsupported.count(s), where, ": unsupported dtype ", s,
                " (supported: F32 F64 BF16 F16 I32 I64 BOOL)");
  throw Error(detail::concat(where, ": unknown dtype '", s,
                             "', expected one of F32 F64 BF16 F16 I32 I64 BOOL"));
}

SafetensorsInfo parse_entry(const json& entry, uint64_t buffer_size, const std::string& where) {
  MOEGRAD_CHECK(entry.is_object(), where, ": expected an object, found ", entry.dump());
  for (const auto& [key, value] : entry.items()) {
    MOEGRAD_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", where,
                  ": unexpected key '", key, "', expected dtype, shape and data_offsets");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    MOEGRAD_CHECK(entry.contains(key), where, ": missing '", key, "'");
  }
  SafetensorsInfo info{};
  info.dtype = parse_dtype(entry["dtype"], where);

  const json& shape = entry["shape"];
  MOEGRAD_CHECK(shape.is_array(), where, ": expected shape to be an array, found ", shape.dump());
  // `span` treats zero sizes as one, so that the strides of an empty tensor fit in int64 too.
  uint64_t numel = 1, span = 1;
  for (const json& d : shape) {
    uint64_t size = as_count(d, where, "every shape entry");
    MOEGRAD_CHECK(!__builtin_mul_overflow(span, std::max<uint64_t>(size, 1), &span) &&
                      span <= uint64_t(INT64_MAX),
                  where, ": shape ", shape.dump(), " has more elements than fit in 64 bits");
    numel *= size;
    info.shape.push_back(int64_t(size));
  }
  uint64_t nbytes = 0;
  MOEGRAD_CHECK(!__builtin_mul_overflow(numel, dtype_size(info.dtype), &nbytes), where,
                ": shape ", shape.dump(), " has more bytes than fit in 64 bits");

  const json& offsets = entry["data_offsets"];
  MOEGRAD_CHECK(offsets.is_array() && offsets.size() == 2, where,
                ": expected data_offsets to be [begin, end], found ", offsets.dump());
  info.begin = as_count(offsets[0], where, "data_offsets");
  info.end = as_count(offsets[1], where, "data_offsets");
  MOEGRAD_CHECK(info.begin <= info.end, where, ": data_offsets ", offsets.dump(),
                " end before begin");
  MOEGRAD_CHECK(info.end <= buffer_size, where, ": data_offsets ", offsets.dump(),
                " past the end of the ", buffer_size, "-byte data buffer");
  MOEGRAD_CHECK(info.end - info.begin == nbytes, where, ": data_offsets ", offsets.dump(),
                " span ", info.end - info.begin, " bytes, expected ", nbytes, " for ",
                safetensors_name(info.dtype), " shape ", shape.dump());
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& m, const std::string& where) {
  MOEGRAD_CHECK(m.is_object(), where, ": expected __metadata__ to be an object, found ", m.dump());
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : m.items()) {
    MOEGRAD_CHECK(value.is_string(), where, ": expected __metadata__ value of '", key,
                  "' to be a string, found ", value.dump());
    out[key] = value.get<std::string>();
  }
  return out;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const std::string where = "safetensors " + path;
  file_ = MappedFile::open(path);
  const uint64_t size = file_->size();
  MOEGRAD_CHECK(size >= 8, where, ": expected at least 8 bytes (the header length), found ", size);
  const uint8_t* bytes = file_->data();
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes, 8);
  MOEGRAD_CHECK(header_len <= size - 8, where, ": header length ", header_len,
                " runs past the end of the ", size, "-byte file");
  MOEGRAD_CHECK(header_len <= kMaxHeaderBytes, where, ": header length ", header_len,
                " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  const char* header = reinterpret_cast<const char*>(bytes + 8);
  MOEGRAD_CHECK(header_len > 0 && header[0] == '{', where,
                ": expected the header to be a JSON object starting with '{'");
  json root = parse_strict(header, header + header_len, where + ": header");
  MOEGRAD_CHECK(root.is_object(), where, ": expected the header to be a JSON object");

  buffer_ = file_->data() + 8 + header_len;
  const uint64_t buffer_size = size - 8 - header_len;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      metadata_ = parse_metadata(entry, where);
      continue;
    }
    infos_.emplace(name, parse_entry(entry, buffer_size, where + ": tensor '" + name + "'"));
    names_.push_back(name);
  }

  // Every data byte belongs to exactly one tensor: sorted by range, each starts where the
  // previous ended and the last ends at the end of the file.
  std::sort(names_.begin(), names_.end(), [&](const std::string& a, const std::string& b) {
    const SafetensorsInfo &x = infos_.at(a), &y = infos_.at(b);
    return std::tie(x.begin, x.end, a) < std::tie(y.begin, y.end, b);
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const std::string& name : names_) {
    const SafetensorsInfo& info = infos_.at(name);
    MOEGRAD_CHECK(info.begin >= covered, where, ": tensor '", name, "' data_offsets [",
                  info.begin, ", ", info.end, ") overlap tensor '", *previous, "' ending at ",
                  covered);
    MOEGRAD_CHECK(info.begin == covered, where, ": hole in the data buffer: bytes [", covered,
                  ", ", info.begin, ") before tensor '", name, "' belong to no tensor");
    covered = info.end;
    previous = &name;
  }
  MOEGRAD_CHECK(covered == buffer_size, where, ": hole in the data buffer: bytes [", covered,
                ", ", buffer_size, ") at its end belong to no tensor");
}

const SafetensorsInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = infos_.find(name);
  MOEGRAD_CHECK(it != infos_.end(), "safetensors ", path_, ": no tensor named '", name, "'");
  return it->second;
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsInfo& meta = info(name);
  const uint64_t nbytes = meta.end - meta.begin;
  if (nbytes == 0) return empty(meta.shape, meta.dtype);
  uint8_t* data = buffer_ + meta.begin;
  if (meta.dtype == DType::Bool) {
    // Any byte other than 0 or 1 read as a C++ bool is undefined behaviour.
    const uint8_t* bad = std::find_if(data, data + nbytes, [](uint8_t b) { return b > 1; });
    MOEGRAD_CHECK(bad == data + nbytes, "safetensors ", path_, ": tensor '", name,
                  "': expected BOOL bytes 0 or 1, found ", int(*bad), " at element ",
                  bad - data);
  }
  const Shape strides = contiguous_strides(meta.shape);
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(meta.dtype) == 0) {
    auto storage = std::make_shared<Storage>(data, nbytes, Device::cpu(),
                                             [file = file_] {});
    return Tensor(std::move(storage), meta.shape, strides, 0, meta.dtype);
  }
  Tensor copy = empty(meta.shape, meta.dtype);
  std::memcpy(copy.data_ptr(), data, nbytes);
  return copy;
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = "save_safetensors " + path;
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    MOEGRAD_CHECK(t.defined(), where, ": tensor '", name, "' is undefined");
    MOEGRAD_CHECK(!name.empty() && name != "__metadata__", where, ": invalid tensor name '", name,
                  "'");
    MOEGRAD_CHECK(seen.insert(name).second, where, ": duplicate tensor name '", name, "'");
    host.push_back(t.to(Device::cpu()).contiguous());
    uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", safetensors_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(where, ": cannot encode the header: ", e.what()));
  }
  // The data buffer starts 8-byte aligned so that every tensor of the file can be viewed in place.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t header_len = text.size();

  AtomicFile out(path);
  out.write(&header_len, 8);
  out.write(text.data(), text.size());
  for (const Tensor& t : host) {
    if (t.numel() > 0) out.write(t.data_ptr(), size_t(t.numel()) * dtype_size(t.dtype()));
  }
  out.commit();
}

SafetensorsIndex::SafetensorsIndex(const std::string& index_path) : path_(index_path) {
  const std::string where = "safetensors index " + index_path;
  std::ifstream in(index_path, std::ios::binary);
  MOEGRAD_CHECK(in, where, ": cannot open the file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json root = parse_strict(text.data(), text.data() + text.size(), where);
  MOEGRAD_CHECK(root.is_object() && root.contains("weight_map") && root["weight_map"].is_object(),
                where, ": expected an object with a \"weight_map\" object");
  if (root.contains("metadata")) {
    const json& m = root["metadata"];
    MOEGRAD_CHECK(m.is_object(), where, ": expected metadata to be an object, found ", m.dump());
    if (m.contains("total_size")) total_size_ = as_count(m["total_size"], where, "total_size");
  }
  const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  for (const auto& [name, file] : root["weight_map"].items()) {
    MOEGRAD_CHECK(file.is_string(), where, ": tensor '", name,
                  "': expected a shard file name, found ", file.dump());
    const std::string& shard = file.get_ref<const std::string&>();
    // Shards are siblings of the index: a stranger's index must not reach elsewhere.
    MOEGRAD_CHECK(!shard.empty() && shard.find('/') == std::string::npos && shard != "." &&
                      shard != "..",
                  where, ": tensor '", name, "': expected a file name in the index's directory, found '",
                  shard, "'");
    auto it = shards_.find(shard);
    if (it == shards_.end()) {
      it = shards_.emplace(shard, std::make_unique<SafetensorsFile>((dir / shard).string())).first;
    }
    MOEGRAD_CHECK(it->second->contains(name), where, ": tensor '", name, "' is mapped to ", shard,
                  ", which does not contain it");
    shard_of_[name] = shard;
    names_.push_back(name);
  }
}

const std::string& SafetensorsIndex::shard_of(const std::string& name) const {
  auto it = shard_of_.find(name);
  MOEGRAD_CHECK(it != shard_of_.end(), "safetensors index ", path_, ": no tensor named '", name,
                "'");
  return it->second;
}

const SafetensorsFile& SafetensorsIndex::shard_holding(const std::string& name) const {
  return *shards_.at(shard_of(name));
}

const SafetensorsInfo& SafetensorsIndex::info(const std::string& name) const {
  return shard_holding(name).info(name);
}

Tensor SafetensorsIndex::tensor(const std::string& name) const {
  return shard_holding(name).tensor(name);
}

void save_sharded(const std::string& dir,
                  const std::vector<std::pair<std::string, Tensor>>& tensors,
                  uint64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  MOEGRAD_CHECK(max_shard_bytes > 0, "save_sharded ", dir, ": max_shard_bytes must be positive");
  std::vector<std::vector<std::pair<std::string, Tensor>>> shards(1);
  std::set<std::string> seen;
  uint64_t shard_bytes = 0, total = 0;
  for (const auto& entry : tensors) {
    MOEGRAD_CHECK(seen.insert(entry.first).second, "save_sharded ", dir,
                  ": duplicate tensor name '", entry.first, "'");
    MOEGRAD_CHECK(entry.second.defined(), "save_sharded ", dir, ": tensor '", entry.first,
                  "' is undefined");
    uint64_t nbytes = uint64_t(entry.second.numel()) * dtype_size(entry.second.dtype());
    if (!shards.back().empty() && shard_bytes + nbytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(entry);
    shard_bytes += nbytes;
    total += nbytes;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  MOEGRAD_CHECK(!ec, "save_sharded ", dir, ": cannot create the directory: ", ec.message());

  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    char file[64];
    std::snprintf(file, sizeof(file), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    save_safetensors((std::filesystem::path(dir) / file).string(), shards[i], metadata);
    for (const auto& entry : shards[i]) weight_map[entry.first] = file;
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", weight_map}};
  std::string text = index.dump(2) + "\n";
  AtomicFile out((std::filesystem::path(dir) / "model.safetensors.index.json").string());
  out.write(text.data(), text.size());
  out.commit();
}

}  // namespace moegrad
