// Documents streamed from one input path, one at a time with bounded memory: a folder of .txt
// files (one document each, in name order), a single .txt file, or a JSONL file of
// {"text": ..., "id": ...} lines (the format of CulturaX-style dumps).
#pragma once
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace moegrad::data {

struct Document {
  // What the document was called at its source, so that analyses can align the same document
  // across languages: a .txt file's name without ".txt", a JSONL line's "id", else
  // "<file name>:<line>".
  std::string name;
  std::string text;  // valid UTF-8
};

class DocumentSource {
 public:
  // Checks that `path` exists and has a known kind; throws naming it otherwise.
  explicit DocumentSource(const std::string& path);
  ~DocumentSource();
  DocumentSource(DocumentSource&&) noexcept;
  DocumentSource& operator=(DocumentSource&&) noexcept;

  // The next non-empty document; false after the last one. Throws a moegrad::Error naming the
  // file (and the line, for JSONL) on unreadable input, bad JSON, a missing or non-string
  // "text", or text that is not valid UTF-8.
  bool next(Document& doc);

  const std::string& path() const { return path_; }
  // Input bytes in all, and consumed so far: what a progress bar counts.
  int64_t total_bytes() const { return total_bytes_; }
  int64_t bytes_read() const { return bytes_read_; }
  // Documents that were empty or only whitespace, skipped by next().
  int64_t skipped_empty() const { return skipped_empty_; }

 private:
  enum class Kind { Directory, Text, Jsonl };
  bool next_text_file(Document& doc);
  bool next_jsonl_line(Document& doc);

  std::string path_;
  Kind kind_;
  std::vector<std::string> files_;  // the .txt files, for Directory and Text
  size_t next_file_ = 0;
  std::unique_ptr<std::ifstream> jsonl_;
  std::string jsonl_name_;  // the file's name, for documents without an "id"
  int64_t line_ = 0;
  int64_t total_bytes_ = 0;
  int64_t bytes_read_ = 0;
  int64_t skipped_empty_ = 0;
};

}  // namespace moegrad::data
