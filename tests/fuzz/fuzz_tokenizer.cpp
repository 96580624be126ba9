// libFuzzer target for the tokenizer. First byte even: the rest is a tokenizer.json, which
// either loads (and then encodes a fixed text) or is rejected with moegrad::Error. Odd: the rest
// is text for the HF fixture tokenizer; valid UTF-8 must round trip to its NFC form, anything
// else must be rejected with moegrad::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "data/byte_level.h"
#include "data/tokenizer.h"

namespace {

const moegrad::data::Tokenizer& fixture() {
  static const moegrad::data::Tokenizer tok = moegrad::data::Tokenizer::from_file(
      (std::filesystem::path(__FILE__).parent_path().parent_path() / "reference" / "tokenizer" /
       "tokenizer.json")
          .string());
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      moegrad::data::Tokenizer::from_json(rest, "fuzz.json").encode("ab cd<|endoftext|>");
    } else {
      const auto ids = fixture().encode(rest);
      if (fixture().decode(ids) != moegrad::data::nfc(rest)) std::abort();
    }
  } catch (const moegrad::Error&) {
  }
  return 0;
}
