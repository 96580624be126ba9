#include "data/document_source.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/byte_level.h"

namespace moegrad::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos; }

int64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  MOEGRAD_CHECK(!ec, "document source: cannot read ", path, ": ", ec.message());
  return static_cast<int64_t>(size);
}

}  // namespace

DocumentSource::DocumentSource(const std::string& path) : path_(path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  MOEGRAD_CHECK(fs::exists(status), "document source: ", path, " does not exist");
  if (fs::is_directory(status)) {
    kind_ = Kind::Directory;
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
      if (e.is_regular_file() && ends_with(e.path().filename().string(), ".txt"))
        files_.push_back(e.path().string());
    }
    MOEGRAD_CHECK(!ec, "document source: cannot list ", path, ": ", ec.message());
    MOEGRAD_CHECK(!files_.empty(), "document source: ", path, " holds no .txt file");
    std::sort(files_.begin(), files_.end());
    for (const std::string& f : files_) total_bytes_ += file_size(f);
    return;
  }
  MOEGRAD_CHECK(fs::is_regular_file(status), "document source: ", path, " is not a file or a folder");
  total_bytes_ = file_size(path);
  if (ends_with(path, ".txt")) {
    kind_ = Kind::Text;
    files_.push_back(path);
  } else if (ends_with(path, ".jsonl")) {
    kind_ = Kind::Jsonl;
    jsonl_ = std::make_unique<std::ifstream>(path, std::ios::binary);
    MOEGRAD_CHECK(jsonl_->good(), "document source: cannot open ", path);
    jsonl_name_ = fs::path(path).filename().string();
  } else if (ends_with(path, ".gz")) {
    throw Error("document source: " + path + " is compressed; decompress it first (gunzip -k " + path +
                ")");
  } else {
    throw Error("document source: " + path +
                " has an unknown extension (expected a folder of .txt files, a .txt file or a "
                ".jsonl file)");
  }
}

DocumentSource::~DocumentSource() = default;
DocumentSource::DocumentSource(DocumentSource&&) noexcept = default;
DocumentSource& DocumentSource::operator=(DocumentSource&&) noexcept = default;

bool DocumentSource::next(Document& doc) {
  return kind_ == Kind::Jsonl ? next_jsonl_line(doc) : next_text_file(doc);
}

bool DocumentSource::next_text_file(Document& doc) {
  while (next_file_ < files_.size()) {
    const std::string& file = files_[next_file_++];
    std::ifstream in(file, std::ios::binary);
    doc.text.resize(static_cast<size_t>(file_size(file)));
    in.read(doc.text.data(), static_cast<std::streamsize>(doc.text.size()));
    MOEGRAD_CHECK(in.good() || (in.eof() && !in.bad()), "document source: cannot read ", file);
    doc.text.resize(static_cast<size_t>(in.gcount()));
    bytes_read_ += static_cast<int64_t>(doc.text.size());
    const size_t bad = utf8_invalid_at(doc.text);
    if (bad != std::string::npos) {
      const auto line = 1 + std::count(doc.text.begin(), doc.text.begin() + static_cast<ptrdiff_t>(bad), '\n');
      throw Error("document source: " + file + ":" + std::to_string(line) + ": invalid UTF-8 (byte " +
                  std::to_string(bad) + " of the file)");
    }
    if (blank(doc.text)) {
      ++skipped_empty_;
      continue;
    }
    const std::string name = fs::path(file).filename().string();
    doc.name = name.substr(0, name.size() - 4);
    return true;
  }
  return false;
}

bool DocumentSource::next_jsonl_line(Document& doc) {
  std::string line;
  while (std::getline(*jsonl_, line)) {
    ++line_;
    bytes_read_ = std::min(total_bytes_, bytes_read_ + static_cast<int64_t>(line.size()) + 1);
    if (blank(line)) continue;
    const std::string where = "document source: " + path_ + ":" + std::to_string(line_) + ": ";
    const size_t bad = utf8_invalid_at(line);
    MOEGRAD_CHECK(bad == std::string::npos, where, "invalid UTF-8 (byte ", bad, " of the line)");
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw Error(where + "invalid JSON: " + e.what());
    }
    MOEGRAD_CHECK(j.is_object(), where, "expected a JSON object like {\"text\": ...}, got a ",
                  j.type_name());
    auto text = j.find("text");
    MOEGRAD_CHECK(text != j.end(), where, "missing \"text\"");
    MOEGRAD_CHECK(text->is_string(), where, "\"text\" is not a string (it is a ", text->type_name(),
                  ")");
    doc.text = text->get<std::string>();
    if (blank(doc.text)) {
      ++skipped_empty_;
      continue;
    }
    auto id = j.find("id");
    if (id != j.end() && id->is_string()) doc.name = id->get<std::string>();
    else if (id != j.end() && id->is_number()) doc.name = id->dump();
    else doc.name = jsonl_name_ + ":" + std::to_string(line_);
    return true;
  }
  MOEGRAD_CHECK(!jsonl_->bad(), "document source: cannot read ", path_, " after line ", line_);
  return false;
}

}  // namespace moegrad::data
