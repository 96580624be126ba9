#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/io/atomic_file.h"
#include "core/io/checksum.h"
#include "core/io/json_reader.h"
#include "core/io/safetensors.h"
#include "moe/checkpoint.h"

namespace moegrad::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kFormat = "moegrad-checkpoint";
constexpr int kVersion = 1;

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

// The step of a finished checkpoint directory name, or -1.
int64_t step_of(const fs::path& p) {
  const std::string n = p.filename().string();
  if (n.size() != 13 || n.rfind("step-", 0) != 0) return -1;
  for (size_t i = 5; i < n.size(); ++i)
    if (n[i] < '0' || n[i] > '9') return -1;
  return std::stoll(n.substr(5));
}

void fsync_path(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  MOEGRAD_CHECK(fd >= 0, "cannot open '", p.string(), "' to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  MOEGRAD_CHECK(rc == 0, "cannot sync '", p.string(), "'");
}

// Renames a finished temporary directory over `target` (replacing an older one of the same
// name) and makes the rename durable.
void publish(const fs::path& tmp, const fs::path& target) {
  for (const auto& e : fs::directory_iterator(tmp)) fsync_path(e.path());
  fsync_path(tmp);
  if (fs::exists(target)) {
    const fs::path old = retired_name(target.string());
    fs::rename(target, old);
    fs::rename(tmp, target);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, target);
  }
  fsync_path(target.parent_path());
}

// Hidden (a leading dot), so that listings of checkpoints pass over it.
fs::path temp_dir_for(const fs::path& target) {
  // Appended, not "." + string: GCC 12 warns falsely (-Wrestrict) about the latter.
  std::string hidden = ".";
  hidden += target.filename().string();
  return temporary_name((target.parent_path() / hidden).string());
}

}  // namespace

void save_model_atomically(const OlmoeForCausalLM& model, const std::string& dir,
                           const std::string& tokenizer) {
  const fs::path target = fs::absolute(dir);
  fs::create_directories(target.parent_path());
  const fs::path tmp = temp_dir_for(target);
  fs::remove_all(tmp);
  save_olmoe(model, tmp.string());
  if (!tokenizer.empty()) fs::copy_file(tokenizer, tmp / "tokenizer.json");
  publish(tmp, target);
}

std::string save_checkpoint(const std::string& checkpoints_dir, int64_t step,
                            const OlmoeForCausalLM& model,
                            const std::vector<std::pair<std::string, Tensor>>& optimizer_state,
                            const json& state) {
  const fs::path target = fs::absolute(fs::path(checkpoints_dir) / step_name(step));
  fs::create_directories(target.parent_path());
  const fs::path tmp = temp_dir_for(target);
  fs::remove_all(tmp);
  save_olmoe(model, tmp.string());
  save_safetensors((tmp / kOptimizerFile).string(), optimizer_state, {{"format", "moegrad"}});
  json full = state;
  full["format"] = kFormat;
  full["version"] = kVersion;
  full["step"] = step;
  json files = json::object();
  for (const auto& e : fs::directory_iterator(tmp)) {
    const std::string name = e.path().filename().string();
    files[name] = {{"bytes", fs::file_size(e.path())}, {"fnv1a64", hex64(fnv1a64_file(e.path()))}};
  }
  full["files"] = files;
  write_file_atomically((tmp / kStateFile).string(), full.dump(2) + "\n");
  publish(tmp, target);
  return target.string();
}

std::string latest_checkpoint(const std::string& checkpoints_dir) {
  if (!fs::is_directory(checkpoints_dir)) return "";
  int64_t best = -1;
  fs::path best_path;
  for (const auto& e : fs::directory_iterator(checkpoints_dir)) {
    const int64_t s = step_of(e.path());
    if (e.is_directory() && s > best) {
      best = s;
      best_path = e.path();
    }
  }
  return best < 0 ? "" : best_path.string();
}

Checkpoint load_checkpoint(const std::string& dir) {
  const fs::path root(dir);
  const fs::path state_path = root / kStateFile;
  MOEGRAD_CHECK(fs::is_regular_file(state_path), "checkpoint ", dir, " is incomplete: no ",
                kStateFile);
  std::ifstream in(state_path);
  json state;
  try {
    state = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(state_path.string() + ": not valid JSON (" + e.what() + ")");
  }
  MOEGRAD_CHECK(state.is_object() && state.contains("format") && state["format"] == kFormat,
                state_path.string(), ": not a moegrad checkpoint state (field 'format' must be \"",
                kFormat, "\")");
  const JsonReader fields(state, state_path.string());
  const int64_t version = fields["version"].integer();
  MOEGRAD_CHECK(version == kVersion, state_path.string(), ": version ", version,
                " is not supported (this build reads ", kVersion, ")");
  const int64_t step = fields["step"].integer(0);
  const JsonReader files = fields["files"];
  for (const std::string name : {"config.json", "model.safetensors", kOptimizerFile})
    MOEGRAD_CHECK(files.has(name), state_path.string(), ": does not list ", name);
  for (const auto& entry : files.json().items()) {
    const std::string& name = entry.key();
    const JsonReader info = files[name];
    const fs::path p = root / name;
    MOEGRAD_CHECK(fs::is_regular_file(p), "checkpoint ", dir, " is incomplete: ", name,
                  " is missing");
    const uint64_t bytes = info["bytes"].unsigned_integer();
    MOEGRAD_CHECK(fs::file_size(p) == bytes, p.string(), " is truncated or was changed: ",
                  fs::file_size(p), " bytes, the checkpoint recorded ", bytes);
    MOEGRAD_CHECK(hex64(fnv1a64_file(p.string())) == info["fnv1a64"].string(), p.string(),
                  " is corrupt: its checksum does not match the one recorded in ", kStateFile);
  }
  Checkpoint c;
  c.dir = dir;
  c.state_file = state_path.string();
  c.step = step;
  c.model = load_olmoe(dir);
  SafetensorsFile opt((root / kOptimizerFile).string());
  for (const std::string& n : opt.names()) c.optimizer_state.emplace_back(n, opt.tensor(n).clone());
  c.state = std::move(state);
  return c;
}

void prune_checkpoints(const std::string& checkpoints_dir, int64_t keep) {
  std::vector<std::pair<int64_t, fs::path>> found;
  for (const auto& e : fs::directory_iterator(checkpoints_dir)) {
    const int64_t s = step_of(e.path());
    if (e.is_directory() && s >= 0) found.emplace_back(s, e.path());
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + size_t(keep) < found.size(); ++i) {
    const fs::path old = retired_name(found[i].second.string());
    fs::rename(found[i].second, old);
    fs::remove_all(old);
  }
}

}  // namespace moegrad::train
