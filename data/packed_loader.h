// Training batches: fixed-length sequences packed from the token shards of several languages,
// deterministic given the seed and resumable from a saved position.
//
// - Every sequence holds tokens of one language, so per-language losses and routing statistics
//   can be kept. Languages are ordered by name (languages()), whatever order the shards come in.
// - Per language, each epoch visits the documents in a fresh random permutation, seeded by
//   (seed, language name, epoch) through splitmix64: the same on every machine and thread count,
//   and a language's order does not change when other languages are added. Each document is
//   followed by eos_id, and this token stream is cut into consecutive seq_len chunks: a document
//   may span several sequences, and nothing is padded. When the documents run out, the next
//   epoch begins in the same sequence.
// - Which language the s-th sequence of the global stream comes from is a smooth weighted round
//   robin, without randomness: sequence s goes to the language i maximising
//   (s + 1) * w_i - n_i * sum(w), n_i the sequences language i has had so far, lowest index on
//   ties. Its count never drifts: it stays within about one sequence of s * w_i / sum(w). Uniform
//   weights (the default) give plain round robin: sequence s is language s mod L.
// - Data parallel: a global batch is the next batch_size * world_size sequences of that stream,
//   and rank r gets rows [r * batch_size, (r + 1) * batch_size) of it, so the ranks together see
//   exactly the world_size = 1 stream. Every rank walks the whole global stream (skipping the
//   other ranks' tokens without reading them), so all ranks hold the same state and any one of
//   them can save it; a state also resumes under another batch_size, world_size or rank.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/io/json_reader.h"
#include "core/tensor.h"
#include "data/token_shard.h"

namespace moegrad::data {

struct LoaderOptions {
  int64_t seq_len = 0;     // tokens per sequence, at least 2
  int64_t batch_size = 0;  // sequences per batch on this rank
  uint64_t seed = 0;
  int32_t eos_id = -1;     // appended after every document; must lie in the vocabulary
  // (language, weight > 0) for every language, or empty for uniform.
  std::vector<std::pair<std::string, double>> weights;
  int64_t rank = 0;
  int64_t world_size = 1;
};

struct Batch {
  Tensor input_ids;                    // int64 [batch_size, seq_len] on the CPU
  std::vector<std::string> languages;  // the language of each row
};

class PackedLoader {
 public:
  // One shard per language, all with the same vocabulary; throws naming what does not fit.
  PackedLoader(std::vector<TokenShard> shards, LoaderOptions options);

  Batch next();

  // JSON holding the position (global sequence count, per-language sequence counts, epoch,
  // place in the permutation and offset in the current document) and a fingerprint of the
  // shards and of the options that shape the stream (seq_len, seed, eos_id, weights).
  std::string state_json() const;
  // Continues exactly where state_json() was taken; throws naming the mismatch when the state
  // was saved over other shards or options, and the field when it is malformed.
  void restore(const std::string& state_json);
  void restore(const JsonReader& state);  // the same, parsed (a field of a checkpoint's state)

  const std::vector<std::string>& languages() const { return languages_; }

 private:
  struct Stream {
    int64_t epoch = 0;
    int64_t position = 0;  // index into order
    int64_t offset = 0;    // tokens of the current document already taken; its eos is the last
    int64_t sequences = 0;
    std::vector<int64_t> order;  // this epoch's permutation of the documents
  };

  size_t pick_language();
  // Takes the next n tokens of language i into out, or skips them when out is null.
  void take(size_t i, int64_t n, int32_t* out);
  void start_epoch(size_t i, int64_t epoch);

  std::vector<TokenShard> shards_;
  LoaderOptions options_;
  std::vector<std::string> languages_;
  std::vector<double> weights_;
  double weight_sum_ = 0;
  std::vector<Stream> streams_;
  int64_t sequence_ = 0;  // sequences of the global stream taken so far
};

}  // namespace moegrad::data
