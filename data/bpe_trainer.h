// Byte-level BPE training with the algorithm of HF tokenizers' BpeTrainer (word counts, then
// incremental pair counts and a priority queue), so that the same corpus gives the same merges.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace moegrad::data {

struct BpeTrainerOptions {
  int32_t vocab_size = 32000;                // special tokens and the 256 byte chars included
  std::vector<std::string> special_tokens;   // ids 0.. in this order
  int64_t min_frequency = 0;                 // stop when the best pair is rarer than this
  bool nfc = true;
};

// `next` fills its argument with the next text and returns false when there is none. The
// pipeline is NFC (if opts.nfc), ByteLevel (GPT-2 regex, no prefix space), BPE; the initial
// alphabet is all 256 byte chars (HF: initial_alphabet=ByteLevel.alphabet()). As in HF,
// special tokens in the training text are not split out.
Tokenizer train_bpe(const std::function<bool(std::string&)>& next, const BpeTrainerOptions& opts);
Tokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& opts);
// Each line of each file (with its newline) is one text, as HF's train(files) reads them.
Tokenizer train_bpe_files(const std::vector<std::string>& paths, const BpeTrainerOptions& opts);

}  // namespace moegrad::data
