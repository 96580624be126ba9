// The exception every moegrad check throws, and the macro that builds its message.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace moegrad {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace moegrad

// MOEGRAD_CHECK(cond, "op: ", what, ...) throws moegrad::Error with the pieces streamed together.
#define MOEGRAD_CHECK(cond, ...)                                          \
  do {                                                                    \
    if (!(cond)) throw ::moegrad::Error(::moegrad::detail::concat(__VA_ARGS__)); \
  } while (0)
