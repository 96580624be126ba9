#include "moe/checkpoint.h"

#include <filesystem>
#include <set>

#include "core/io/safetensors.h"

namespace moegrad {
namespace {

namespace fs = std::filesystem;

// One file or a sharded index, behind one interface.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& dir) {
    fs::path single = fs::path(dir) / "model.safetensors";
    fs::path index = fs::path(dir) / "model.safetensors.index.json";
    if (fs::exists(single)) {
      file_ = std::make_unique<SafetensorsFile>(single.string());
    } else if (fs::exists(index)) {
      index_ = std::make_unique<SafetensorsIndex>(index.string());
    } else {
      throw Error("load_olmoe: " + dir + " holds neither model.safetensors nor model.safetensors.index.json");
    }
  }
  const std::vector<std::string>& names() const { return file_ ? file_->names() : index_->names(); }
  bool contains(const std::string& n) const { return file_ ? file_->contains(n) : index_->contains(n); }
  Tensor tensor(const std::string& n) const { return file_ ? file_->tensor(n) : index_->tensor(n); }

 private:
  std::unique_ptr<SafetensorsFile> file_;
  std::unique_ptr<SafetensorsIndex> index_;
};

struct ExpertName {
  std::string layer_prefix;  // "model.layers.3.mlp.experts."
  int64_t expert = -1;
  std::string proj;          // gate_proj, up_proj, down_proj
};

// Parses "model.layers.{i}.mlp.experts.{e}.{proj}.weight"; expert < 0 for any other name.
ExpertName parse_expert_name(const std::string& name) {
  const std::string marker = ".mlp.experts.";
  ExpertName out;
  size_t at = name.find(marker);
  if (at == std::string::npos) return out;
  size_t start = at + marker.size(), dot = name.find('.', start);
  if (dot == std::string::npos) return out;
  out.layer_prefix = name.substr(0, start);
  out.expert = std::stoll(name.substr(start, dot - start));
  out.proj = name.substr(dot + 1, name.size() - dot - 1 - std::string(".weight").size());
  return out;
}

// The per-expert tensor `name` cut out of the fused v5 tensors, or an undefined Tensor.
Tensor from_fused(const CheckpointReader& reader, const std::string& name, std::set<std::string>& used) {
  ExpertName e = parse_expert_name(name);
  if (e.expert < 0) return Tensor();
  const std::string fused = e.layer_prefix + (e.proj == "down_proj" ? "down_proj" : "gate_up_proj");
  if (!reader.contains(fused)) return Tensor();
  used.insert(fused);
  Tensor t = reader.tensor(fused);
  MOEGRAD_CHECK(t.dim() == 3 && e.expert < t.size(0), "load_olmoe: fused tensor '", fused,
                "' has shape ", shape_str(t.shape()), ", which has no expert ", e.expert);
  Tensor x = t.select(0, e.expert);
  if (e.proj == "down_proj") return x;
  MOEGRAD_CHECK(x.size(0) % 2 == 0, "load_olmoe: fused tensor '", fused, "' has an odd number of rows ",
                x.size(0), " (expected gate rows then up rows)");
  const int64_t inter = x.size(0) / 2;
  return x.narrow(0, e.proj == "gate_proj" ? 0 : inter, inter);
}

}  // namespace

std::unique_ptr<OlmoeForCausalLM> load_olmoe(const std::string& dir) {
  OlmoeConfig config = OlmoeConfig::load((fs::path(dir) / "config.json").string());
  auto model = std::make_unique<OlmoeForCausalLM>(config);
  CheckpointReader reader(dir);
  std::set<std::string> used;
  for (auto& [name, view] : model->hf_named_tensors()) {
    Tensor src;
    if (reader.contains(name)) {
      src = reader.tensor(name);
      used.insert(name);
    } else {
      src = from_fused(reader, name, used);
    }
    MOEGRAD_CHECK(src.defined(), "load_olmoe: ", dir, " has no tensor '", name, "' (expected shape ",
                  shape_str(view.shape()), ")");
    MOEGRAD_CHECK(src.shape() == view.shape(), "load_olmoe: ", dir, ": tensor '", name, "' has shape ",
                  shape_str(src.shape()), ", but config.json implies ", shape_str(view.shape()));
    MOEGRAD_CHECK(is_floating(src.dtype()), "load_olmoe: ", dir, ": tensor '", name, "' has dtype ",
                  dtype_name(src.dtype()), ", expected a float dtype");
    view.copy_(src);
  }
  for (const std::string& n : reader.names())
    MOEGRAD_CHECK(used.count(n), "load_olmoe: ", dir, " holds tensor '", n,
                  "', which an OLMoE model with this config.json does not have");
  return model;
}

void save_olmoe(const OlmoeForCausalLM& model, const std::string& dir) {
  fs::create_directories(dir);
  model.config().save((fs::path(dir) / "config.json").string());
  save_safetensors((fs::path(dir) / "model.safetensors").string(), model.hf_named_tensors(),
                   {{"format", "pt"}});
}

}  // namespace moegrad
