#include "app/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <utility>

namespace moegrad::app {
namespace {

// Terminal redraws are capped at ~10 per second; off a terminal, a total-less job still
// reports now and then.
constexpr double kRedrawSeconds = 0.1;
constexpr double kLogSeconds = 30;

// A count as a short number: 12345, 1.2M. Bytes get SI units: 1.2 MB.
std::string amount(double v, const std::string& unit) {
  char buf[64];
  const bool bytes = unit == "B";
  if (!bytes && std::fabs(v) < 100000) {
    std::snprintf(buf, sizeof buf, v == std::floor(v) ? "%.0f" : "%.1f", v);
    return buf;
  }
  const char* prefixes[] = {"", "k", "M", "G", "T"};
  int p = 0;
  while (std::fabs(v) >= 1000 && p < 4) v /= 1000, ++p;
  std::snprintf(buf, sizeof buf, p || !bytes ? "%.1f%s%s%s" : "%.0f%s%s%s", v, bytes ? " " : "", prefixes[p],
                bytes ? "B" : "");
  return buf;
}

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                               static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(Clock::now()),
      last_draw_(start_) {}

std::string Progress::line(int64_t done, const std::string& suffix) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  // Bytes carry their unit in amount(); other units follow the numbers once.
  const std::string unit = unit_ == "B" ? "" : " " + unit_;
  std::string s = label_ + ": " + amount(static_cast<double>(done), unit_);
  if (total_ > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", 100.0 * static_cast<double>(done) / static_cast<double>(total_));
    s = pct + s + " / " + amount(static_cast<double>(total_), unit_);
  }
  s += unit;
  if (elapsed > 0 && done > 0) {
    const double rate = static_cast<double>(done) / elapsed;
    s += ", " + amount(rate, unit_) + unit + "/s";
    if (total_ > done) s += ", ETA " + duration(static_cast<double>(total_ - done) / rate);
  }
  s += ", " + duration(elapsed) + " elapsed";
  if (!suffix.empty()) s += " | " + suffix;
  return s;
}

void Progress::draw(const std::string& text, bool final) {
  if (tty_) {
    // A line wider than the terminal would wrap, and '\r' would then redraw only its tail.
    std::string padded = text;
    winsize ws{};
    if (!final && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && padded.size() >= ws.ws_col) {
      size_t keep = ws.ws_col - 1u;
      while (keep > 0 && (static_cast<unsigned char>(padded[keep]) & 0xC0) == 0x80) --keep;  // UTF-8
      padded.resize(keep);
    }
    // Pad over what a longer previous line left on screen.
    if (padded.size() < drawn_.size()) padded.append(drawn_.size() - padded.size(), ' ');
    std::cerr << '\r' << padded << (final ? "\n" : "") << std::flush;
    drawn_ = final ? "" : padded;
  } else {
    std::cerr << text << '\n' << std::flush;
  }
  last_draw_ = Clock::now();
}

void Progress::print(const std::string& message) {
  if (!tty_ || drawn_.empty()) {
    std::cerr << message << '\n' << std::flush;
    return;
  }
  const std::string bar = drawn_;
  draw(message, true);
  draw(bar, false);
}

void Progress::update(int64_t done, const std::string& suffix) {
  done_ = done;
  const double since = std::chrono::duration<double>(Clock::now() - last_draw_).count();
  if (tty_) {
    if (since >= kRedrawSeconds) draw(line(done, suffix), false);
  } else if (total_ > 0) {
    if (done * 10 >= total_ * next_tenth_ && done < total_) {
      while (done * 10 >= total_ * next_tenth_) ++next_tenth_;
      draw(line(done, suffix), false);
    }
  } else if (since >= kLogSeconds) {
    draw(line(done, suffix), false);
  }
}

void Progress::finish(const std::string& suffix) {
  if (finished_) return;
  finished_ = true;
  draw(line(done_, suffix), true);
}

}  // namespace moegrad::app
