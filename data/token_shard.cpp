#include "data/token_shard.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "core/io/atomic_file.h"
#include "core/io/checksum.h"
#include "core/io/mapped_file.h"

namespace moegrad::data {
namespace {

static_assert(std::endian::native == std::endian::little,
              "token shards are little-endian and are read without byte swapping");

constexpr char kMagic[8] = {'M', 'G', 'S', 'H', 'A', 'R', 'D', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kLanguageBytes = 32;
constexpr size_t kHeaderChecksumAt = 96;
constexpr size_t kHeaderBytes = 104;
// Ids travel as int32, so no vocabulary may exceed 2^31 entries.
constexpr int64_t kMaxVocab = int64_t(1) << 31;
constexpr size_t kWriteBuffer = size_t(1) << 20;

TokenDType dtype_for(int64_t vocab_size) {
  return vocab_size <= 65536 ? TokenDType::U16 : TokenDType::U32;
}
size_t width_of(TokenDType t) { return t == TokenDType::U16 ? 2 : 4; }
const char* dtype_name(TokenDType t) { return t == TokenDType::U16 ? "u16" : "u32"; }

// Empty when `language` is a valid language code, else why not.
std::string language_problem(const std::string& language) {
  if (language.empty()) return "is empty";
  if (language.size() >= kLanguageBytes) {
    return detail::concat("is ", language.size(), " bytes long (at most ", kLanguageBytes - 1,
                          ")");
  }
  for (char c : language) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return "may hold only letters, digits, '_' and '-'";
  }
  return "";
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

template <typename T>
void append(std::vector<uint8_t>& buf, T v) {
  size_t at = buf.size();
  buf.resize(at + sizeof(T));
  store(buf.data() + at, v);
}

struct RawHeader {
  ShardHeader header;
  uint64_t index_bytes = 0;
};

// Checks and decodes the fixed header from the first `available` bytes of the file. Does not
// look at tokens or index.
RawHeader parse_header(const uint8_t* p, size_t available, const std::string& path) {
  size_t prefix = std::min(available, sizeof(kMagic));
  MOEGRAD_CHECK(available > 0 && std::memcmp(p, kMagic, prefix) == 0, path,
                ": not a moegrad token shard (bad magic)");
  MOEGRAD_CHECK(available >= kHeaderBytes, path, ": truncated: the file holds ", available,
                " bytes, less than the ", kHeaderBytes, "-byte header");
  RawHeader raw;
  ShardHeader& h = raw.header;
  h.version = load<uint32_t>(p + 8);
  MOEGRAD_CHECK(h.version == kVersion, path, ": version ", h.version,
                " is not supported (this build reads ", kVersion, ")");
  MOEGRAD_CHECK(fnv1a64(p, kHeaderChecksumAt) == load<uint64_t>(p + kHeaderChecksumAt),
                path, ": header checksum mismatch (file is corrupt)");
  uint32_t dtype = load<uint32_t>(p + 12);
  h.vocab_size = load<int64_t>(p + 16);
  h.num_tokens = load<int64_t>(p + 24);
  h.num_documents = load<int64_t>(p + 32);
  raw.index_bytes = load<uint64_t>(p + 40);
  h.token_checksum = load<uint64_t>(p + 48);
  h.index_checksum = load<uint64_t>(p + 56);
  MOEGRAD_CHECK(h.vocab_size >= 1 && h.vocab_size <= kMaxVocab, path, ": vocab size ",
                h.vocab_size, " is outside [1, ", kMaxVocab, "]");
  MOEGRAD_CHECK(dtype == uint32_t(dtype_for(h.vocab_size)), path, ": token dtype ", dtype,
                " does not match vocab size ", h.vocab_size, " (expected ",
                dtype_name(dtype_for(h.vocab_size)), ")");
  h.dtype = TokenDType(dtype);
  MOEGRAD_CHECK(h.num_tokens >= 0 && h.num_documents >= 0, path, ": negative count (",
                h.num_tokens, " tokens, ", h.num_documents, " documents)");
  const char* lang = reinterpret_cast<const char*>(p + 64);
  h.language.assign(lang, strnlen(lang, kLanguageBytes));
  std::string problem = language_problem(h.language);
  MOEGRAD_CHECK(problem.empty(), path, ": language code '", h.language, "' ", problem);
  for (size_t i = h.language.size(); i < kLanguageBytes; ++i) {
    MOEGRAD_CHECK(lang[i] == 0, path, ": language field is not zero-padded");
  }
  return raw;
}

}  // namespace

// ----------------------------------------------------------------------------------- writer

struct TokenShardWriter::Impl {
  Impl(std::string path, std::string language, int64_t vocab_size)
      : path(std::move(path)),
        language(std::move(language)),
        vocab_size(vocab_size),
        dtype(dtype_for(vocab_size)),
        file(this->path) {}

  void flush() {
    file.write(buffer.data(), buffer.size());
    buffer.clear();
  }

  std::string path;
  std::string language;
  int64_t vocab_size;
  TokenDType dtype;
  AtomicFile file;
  std::vector<uint8_t> buffer;
  std::vector<int64_t> offsets{0};
  std::vector<std::string> names;
  Fnv1a64 token_hash;
  bool finished = false;
};

TokenShardWriter::TokenShardWriter(std::string path, std::string language, int64_t vocab_size) {
  // Arguments are checked before the temporary file exists.
  std::string problem = language_problem(language);
  MOEGRAD_CHECK(problem.empty(), "writing ", path, ": language code '", language, "' ", problem);
  MOEGRAD_CHECK(vocab_size >= 1 && vocab_size <= kMaxVocab, "writing ", path, ": vocab size ",
                vocab_size, " is outside [1, ", kMaxVocab, "]");
  impl_ = std::make_unique<Impl>(std::move(path), std::move(language), vocab_size);
  // Room for the header, filled in by finish() once counts and checksums are known.
  impl_->buffer.resize(kHeaderBytes, 0);
}

TokenShardWriter::~TokenShardWriter() = default;

void TokenShardWriter::add_document(const std::vector<int32_t>& ids, const std::string& name) {
  Impl& s = *impl_;
  MOEGRAD_CHECK(!s.finished, "writing ", s.path, ": add_document after finish()");
  // Checked before anything is written, so a refused document leaves no trace.
  for (int32_t id : ids) {
    MOEGRAD_CHECK(id >= 0 && id < s.vocab_size, "writing ", s.path, ": document '", name,
                  "' has token id ", id, ", outside the vocabulary [0, ", s.vocab_size, ")");
  }
  MOEGRAD_CHECK(name.size() <= std::numeric_limits<uint32_t>::max(), "writing ", s.path,
                ": document name of ", name.size(), " bytes is too long");
  size_t width = width_of(s.dtype);
  for (size_t i = 0; i < ids.size();) {
    size_t n = std::min(ids.size() - i, kWriteBuffer / width);
    size_t at = s.buffer.size();
    s.buffer.resize(at + n * width);
    uint8_t* out = s.buffer.data() + at;
    if (s.dtype == TokenDType::U16) {
      for (size_t j = 0; j < n; ++j) store(out + 2 * j, uint16_t(ids[i + j]));
    } else {
      for (size_t j = 0; j < n; ++j) store(out + 4 * j, uint32_t(ids[i + j]));
    }
    s.token_hash.update(out, n * width);
    if (s.buffer.size() >= kWriteBuffer) s.flush();
    i += n;
  }
  s.offsets.push_back(s.offsets.back() + int64_t(ids.size()));
  s.names.push_back(name);
}

void TokenShardWriter::finish() {
  Impl& s = *impl_;
  MOEGRAD_CHECK(!s.finished, "writing ", s.path, ": finish() called twice");
  s.flush();
  Fnv1a64 index_hash;
  uint64_t index_bytes = 0;
  auto emit = [&] {
    index_hash.update(s.buffer.data(), s.buffer.size());
    index_bytes += s.buffer.size();
    s.flush();
  };
  for (int64_t offset : s.offsets) {
    append(s.buffer, offset);
    if (s.buffer.size() >= kWriteBuffer) emit();
  }
  for (const std::string& name : s.names) {
    append(s.buffer, uint32_t(name.size()));
    s.buffer.insert(s.buffer.end(), name.begin(), name.end());
    if (s.buffer.size() >= kWriteBuffer) emit();
  }
  emit();

  uint8_t header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  store(header + 8, kVersion);
  store(header + 12, uint32_t(s.dtype));
  store(header + 16, s.vocab_size);
  store(header + 24, s.offsets.back());
  store(header + 32, int64_t(s.names.size()));
  store(header + 40, index_bytes);
  store(header + 48, s.token_hash.digest());
  store(header + 56, index_hash.digest());
  std::memcpy(header + 64, s.language.data(), s.language.size());
  store(header + kHeaderChecksumAt, fnv1a64(header, kHeaderChecksumAt));
  s.file.write_at(0, header, kHeaderBytes);
  s.file.commit();
  s.finished = true;
}

int64_t TokenShardWriter::num_tokens() const { return impl_->offsets.back(); }
int64_t TokenShardWriter::num_documents() const { return int64_t(impl_->names.size()); }

// ----------------------------------------------------------------------------------- reader

struct TokenShard::Impl {
  std::string path;
  ShardHeader header;
  std::shared_ptr<MappedFile> file;
  const uint8_t* tokens = nullptr;
  std::vector<int64_t> offsets;
  std::vector<std::string> names;
};

ShardHeader TokenShard::read_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MOEGRAD_CHECK(in, "cannot open ", path, ": ", std::strerror(errno));
  uint8_t bytes[kHeaderBytes] = {};
  in.read(reinterpret_cast<char*>(bytes), kHeaderBytes);
  return parse_header(bytes, size_t(in.gcount()), path).header;
}

namespace {

// Hashes the tokens and finds the largest id, block by block so that the mapping is read from
// disk once.
template <typename T>
std::pair<uint64_t, uint32_t> scan_tokens(const uint8_t* p, int64_t n) {
  constexpr int64_t kBlock = 1 << 16;
  Fnv1a64 hash;
  uint32_t largest = 0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t count = std::min(kBlock, n - begin);
    const uint8_t* block = p + begin * int64_t(sizeof(T));
    hash.update(block, size_t(count) * sizeof(T));
    for (int64_t i = 0; i < count; ++i) {
      largest = std::max(largest, uint32_t(load<T>(block + i * int64_t(sizeof(T)))));
    }
  }
  return {hash.digest(), largest};
}

uint32_t token_at(const uint8_t* tokens, TokenDType dtype, int64_t i) {
  return dtype == TokenDType::U16 ? load<uint16_t>(tokens + 2 * i) : load<uint32_t>(tokens + 4 * i);
}

}  // namespace

TokenShard TokenShard::open(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->file = MappedFile::open(path);
  const uint8_t* data = impl->file->data();
  const uint64_t size = impl->file->size();
  RawHeader raw = parse_header(data, size, path);
  ShardHeader& h = raw.header;

  const uint64_t width = width_of(h.dtype);
  const uint64_t n = uint64_t(h.num_tokens);
  const uint64_t docs = uint64_t(h.num_documents);
  // Counts bounded by the file size first, so the products below cannot overflow.
  MOEGRAD_CHECK(n <= size / width && docs <= size / 8 && raw.index_bytes <= size, path,
                ": truncated: header says ", h.num_tokens, " tokens, ", h.num_documents,
                " documents and a ", raw.index_bytes, "-byte index, but the file holds ", size,
                " bytes");
  const uint64_t token_bytes = n * width;
  const uint64_t expected = kHeaderBytes + token_bytes + raw.index_bytes;
  if (expected != size) {
    std::string says = detail::concat("header says ", h.num_tokens, " tokens (", token_bytes,
                                      " bytes) and a ", raw.index_bytes, "-byte index, ",
                                      expected, " bytes in all, but the file holds ", size,
                                      " bytes");
    MOEGRAD_CHECK(size > expected, path, ": truncated: ", says);
    throw Error(detail::concat(path, ": trailing data after the index: ", says));
  }
  const uint64_t min_index = (docs + 1) * 8 + docs * 4;
  MOEGRAD_CHECK(raw.index_bytes >= min_index, path, ": a ", raw.index_bytes,
                "-byte index cannot hold ", docs, " documents (at least ", min_index,
                " bytes)");

  impl->tokens = data + kHeaderBytes;
  auto [token_hash, largest] = h.dtype == TokenDType::U16
                                   ? scan_tokens<uint16_t>(impl->tokens, h.num_tokens)
                                   : scan_tokens<uint32_t>(impl->tokens, h.num_tokens);
  MOEGRAD_CHECK(token_hash == h.token_checksum, path,
                ": token checksum mismatch (file is corrupt)");
  if (int64_t(largest) >= h.vocab_size) {
    int64_t i = 0;
    while (int64_t(token_at(impl->tokens, h.dtype, i)) < h.vocab_size) ++i;
    throw Error(detail::concat(path, ": token ", i, " is id ", token_at(impl->tokens, h.dtype, i),
                               ", outside the vocabulary [0, ", h.vocab_size, ")"));
  }

  const uint8_t* index = impl->tokens + token_bytes;
  MOEGRAD_CHECK(fnv1a64(index, raw.index_bytes) == h.index_checksum, path,
                ": index checksum mismatch (file is corrupt)");
  impl->offsets.resize(docs + 1);
  std::memcpy(impl->offsets.data(), index, (docs + 1) * 8);
  MOEGRAD_CHECK(impl->offsets[0] == 0, path, ": document index starts at token ",
                impl->offsets[0], ", not 0");
  for (uint64_t d = 0; d < docs; ++d) {
    MOEGRAD_CHECK(impl->offsets[d + 1] >= impl->offsets[d], path, ": document ", d,
                  " ends at token ", impl->offsets[d + 1], " before it starts at ",
                  impl->offsets[d]);
  }
  MOEGRAD_CHECK(impl->offsets[docs] == h.num_tokens, path, ": document index ends at token ",
                impl->offsets[docs], ", not at the ", h.num_tokens, " tokens of the header");

  const uint8_t* p = index + (docs + 1) * 8;
  const uint8_t* end = index + raw.index_bytes;
  impl->names.reserve(docs);
  for (uint64_t d = 0; d < docs; ++d) {
    MOEGRAD_CHECK(end - p >= 4, path, ": the name of document ", d, " lies past the index end");
    uint32_t len = load<uint32_t>(p);
    p += 4;
    MOEGRAD_CHECK(uint64_t(end - p) >= len, path, ": the ", len, "-byte name of document ", d,
                  " lies past the index end");
    impl->names.emplace_back(reinterpret_cast<const char*>(p), len);
    p += len;
  }
  MOEGRAD_CHECK(p == end, path, ": ", end - p, " unused bytes after the document names");
  impl->header = std::move(h);

  TokenShard shard;
  shard.impl_ = std::move(impl);
  return shard;
}

const std::string& TokenShard::path() const { return impl_->path; }
const ShardHeader& TokenShard::header() const { return impl_->header; }

std::pair<int64_t, int64_t> TokenShard::document_range(int64_t i) const {
  MOEGRAD_CHECK(i >= 0 && i < num_documents(), path(), ": document ", i, " out of range (",
                num_documents(), " documents)");
  return {impl_->offsets[size_t(i)], impl_->offsets[size_t(i) + 1]};
}

const std::string& TokenShard::document_name(int64_t i) const {
  MOEGRAD_CHECK(i >= 0 && i < num_documents(), path(), ": document ", i, " out of range (",
                num_documents(), " documents)");
  return impl_->names[size_t(i)];
}

void TokenShard::copy_tokens(int64_t begin, int64_t count, int32_t* out) const {
  MOEGRAD_CHECK(begin >= 0 && count >= 0 && begin <= num_tokens() - count, path(),
                ": copy_tokens of [", begin, ", ", begin + count, ") is outside its ",
                num_tokens(), " tokens");
  // An empty document's `out` may be null, which memcpy may not be given even for 0 bytes.
  if (count == 0) return;
  if (impl_->header.dtype == TokenDType::U32) {
    // Ids are below 2^31 (checked at open), so u32 and int32 bytes agree.
    std::memcpy(out, impl_->tokens + 4 * begin, size_t(count) * 4);
    return;
  }
  const uint8_t* p = impl_->tokens + 2 * begin;
  for (int64_t i = 0; i < count; ++i) out[i] = int32_t(load<uint16_t>(p + 2 * i));
}

std::vector<std::string> shard_languages(const std::string& dir) {
  namespace fs = std::filesystem;
  MOEGRAD_CHECK(fs::is_directory(dir), dir, " is not a folder of token shards");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".shard") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace moegrad::data
