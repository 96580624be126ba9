// A progress line on stderr for long jobs (building token shards, training): done/total, rate
// and ETA. On a terminal it redraws one line in place; otherwise (a CI log, a file) it prints a
// line every tenth of the way, so logs stay short.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace moegrad::app {

class Progress {
 public:
  // total = 0: unknown, so no percentage or ETA. unit "B" prints sizes as kB/MB/GB.
  Progress(std::string label, int64_t total, std::string unit);

  // `suffix` is shown after the counts, e.g. "de: 1234 documents".
  void update(int64_t done, const std::string& suffix = "");
  // The final line, whatever was shown last.
  void finish(const std::string& suffix = "");
  // A message line of its own (an evaluation result, a checkpoint written), printed above the
  // progress line rather than through it.
  void print(const std::string& message);

 private:
  using Clock = std::chrono::steady_clock;
  std::string line(int64_t done, const std::string& suffix) const;
  void draw(const std::string& text, bool final);

  std::string label_;
  int64_t total_;
  std::string unit_;
  bool tty_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  int64_t done_ = 0;
  int next_tenth_ = 1;  // off a terminal: the next tenth of total that prints a line
  std::string drawn_;  // the progress line now on a terminal, empty when none
  bool finished_ = false;
};

}  // namespace moegrad::app
