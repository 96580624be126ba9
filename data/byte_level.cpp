#include "data/byte_level.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <array>
#include <memory>

#include "core/error.h"

namespace moegrad::data {
namespace {

// Length of the well-formed sequence at s[i], or, when ill-formed, minus the length of its
// maximal subpart (at least 1), per Unicode's "U+FFFD substitution of maximal subparts".
int utf8_step(std::string_view s, size_t i) {
  const auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;
    const auto c = static_cast<uint8_t>(s[i + k]);
    if (c < lo || c > hi) return -k;
    lo = 0x80;
    hi = 0xBF;
  }
  return need + 1;
}

struct Pcre2Code {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct Pcre2Match {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

const pcre2_code* gpt2_regex() {
  static const std::unique_ptr<pcre2_code, Pcre2Code> code = [] {
    static constexpr char kPattern[] =
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    MOEGRAD_CHECK(c != nullptr, "gpt2_split: PCRE2 failed to compile the pattern (error ", err,
                  " at ", off, ")");
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);  // optional speed-up: interpreted if it fails
    return std::unique_ptr<pcre2_code, Pcre2Code>(c);
  }();
  return code.get();
}

const std::array<char32_t, 256>& byte_table() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      t[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

}  // namespace

size_t utf8_invalid_at(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_step(s, i);
    if (n < 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_step(s, i);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += -n;
    }
  }
  return out;
}

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_step(s, i);
    MOEGRAD_CHECK(n > 0, "utf8_decode: ill-formed UTF-8 at byte ", i);
    auto b = static_cast<uint8_t>(s[i]);
    char32_t c = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; ++k) c = (c << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    out.push_back(c);
    i += n;
  }
  return out;
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string nfc(std::string_view s) {
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<uint8_t>(c) < 0x80;
  if (ascii) return std::string(s);  // ASCII is always in NFC
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = icu::Normalizer2::getNFCInstance(status);
  MOEGRAD_CHECK(U_SUCCESS(status), "nfc: ICU has no NFC data (", u_errorName(status), ")");
  const icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  const icu::UnicodeString out = norm->normalize(in, status);
  MOEGRAD_CHECK(U_SUCCESS(status), "nfc: ICU normalisation failed (", u_errorName(status), ")");
  std::string result;
  out.toUTF8String(result);
  return result;
}

std::vector<std::string_view> gpt2_split(std::string_view s) {
  std::vector<std::string_view> pieces;
  const pcre2_code* re = gpt2_regex();
  std::unique_ptr<pcre2_match_data, Pcre2Match> md(pcre2_match_data_create_from_pattern(re, nullptr));
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t pos = 0, kept = 0;
  while (pos < s.size()) {
    const int rc = pcre2_match(re, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    MOEGRAD_CHECK(rc >= 0, "gpt2_split: PCRE2 match failed (error ", rc, ")");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[0] > kept) pieces.push_back(s.substr(kept, ov[0] - kept));
    MOEGRAD_CHECK(ov[1] > ov[0], "gpt2_split: empty match at byte ", ov[0]);
    pieces.push_back(s.substr(ov[0], ov[1] - ov[0]));
    pos = kept = ov[1];
  }
  if (kept < s.size()) pieces.push_back(s.substr(kept));
  return pieces;
}

char32_t byte_to_char(uint8_t b) { return byte_table()[b]; }

int char_to_byte(char32_t c) {
  static const std::array<int16_t, 324> inverse = [] {
    std::array<int16_t, 324> inv;
    inv.fill(-1);
    for (int b = 0; b < 256; ++b) inv[byte_table()[b]] = static_cast<int16_t>(b);
    return inv;
  }();
  return c < inverse.size() ? inverse[c] : -1;
}

std::string bytes_to_chars(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (char c : s) utf8_append(out, byte_to_char(static_cast<uint8_t>(c)));
  return out;
}

}  // namespace moegrad::data
