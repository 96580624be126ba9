// Text pieces of the byte-level BPE pipeline: UTF-8 checks, NFC, the GPT-2 pre-tokenizer split
// and the GPT-2 byte <-> unicode mapping.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moegrad::data {

// Byte offset of the first ill-formed UTF-8 sequence, or npos when s is valid UTF-8.
size_t utf8_invalid_at(std::string_view s);
// s with each maximal ill-formed subsequence replaced by U+FFFD, as Rust's
// String::from_utf8_lossy (and so HF's ByteLevel decoder) does.
std::string utf8_lossy(std::string_view s);
// Code points of valid UTF-8 s.
std::u32string utf8_decode(std::string_view s);
void utf8_append(std::string& out, char32_t c);

// Unicode NFC of valid UTF-8 s (ICU).
std::string nfc(std::string_view s);

// GPT-2 split: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
// with Unicode classes; text between matches is kept as pieces too (HF "Isolated").
std::vector<std::string_view> gpt2_split(std::string_view s);

// GPT-2 bytes_to_unicode: the printable byte b maps to U+b, the 68 others to U+0100 + n.
char32_t byte_to_char(uint8_t b);
// The byte of a mapped char, or -1 when c is not one of the 256.
int char_to_byte(char32_t c);
// Each byte of s as the UTF-8 of its mapped char.
std::string bytes_to_chars(std::string_view s);

}  // namespace moegrad::data
