#include "eval/svg_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <tuple>
#include <utility>

#include "core/error.h"

namespace moegrad::eval {
namespace {

constexpr double kFont = 12;
constexpr double kTitleFont = 15;
// Average advance of a sans-serif glyph as a share of the font size: text is measured only to
// leave room for it, so an estimate that errs wide is enough.
constexpr double kCharWidth = 0.62;

// Paul Tol's "muted" qualitative palette, in his recommended order: distinguishable with every
// common colour-vision deficiency.
constexpr std::array<const char*, 9> kPalette = {"#CC6677", "#332288", "#DDCC77",
                                                 "#117733", "#88CCEE", "#882255",
                                                 "#44AA99", "#999933", "#AA4499"};
// Once the palette is used up the next series repeat its colours with the next dash pattern:
// solid, dashed, dotted, dash-dot, dash-dot-dot.
constexpr std::array<const char*, 5> kDashes = {"", "7 3", "2 2", "7 3 2 3", "7 3 2 3 2 3"};

// Viridis at five evenly spaced stops; colours in between are interpolated in RGB.
constexpr std::array<std::array<double, 3>, 5> kViridis = {{{68, 1, 84},
                                                            {59, 82, 139},
                                                            {33, 145, 140},
                                                            {94, 201, 98},
                                                            {253, 231, 37}}};
constexpr const char* kMissing = "#d9d9d9";  // NaN cells

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

double text_width(const std::string& s, double font) {
  return double(utf8_length(s)) * font * kCharWidth;
}

// A coordinate or length: one decimal at most. A non-finite one is a layout bug, never data's
// fault (data reaches the page only through finite checks), so it is refused loudly.
std::string px(double v) {
  MOEGRAD_CHECK(std::isfinite(v), "svg_plot: non-finite coordinate ", v,
                " (a bug in the plot layout)");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s == "-0" ? "0" : s;
}

std::string hex_colour(const std::array<double, 3>& rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", int(std::lround(rgb[0])),
                int(std::lround(rgb[1])), int(std::lround(rgb[2])));
  return buf;
}

std::array<double, 3> viridis(double t) {
  t = std::clamp(t, 0.0, 1.0) * double(kViridis.size() - 1);
  const size_t i = std::min(size_t(t), kViridis.size() - 2);
  const double f = t - double(i);
  std::array<double, 3> out{};
  for (size_t c = 0; c < 3; ++c) out[c] = kViridis[i][c] * (1 - f) + kViridis[i + 1][c] * f;
  return out;
}

// Tick labels of one axis share the number of decimals the step needs.
std::string tick_label(double v, double step) {
  const int decimals = std::clamp(int(std::ceil(-std::log10(step) - 1e-6)), 0, 12);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

class Svg {
 public:
  void line(double x1, double y1, double x2, double y2, const std::string& attrs) {
    body_ << "<line x1=\"" << px(x1) << "\" y1=\"" << px(y1) << "\" x2=\"" << px(x2)
          << "\" y2=\"" << px(y2) << "\" " << attrs << "/>\n";
  }
  void rect(double x, double y, double w, double h, const std::string& attrs,
            const std::string& tooltip = "") {
    body_ << "<rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"" << px(w)
          << "\" height=\"" << px(h) << "\" " << attrs;
    if (tooltip.empty())
      body_ << "/>\n";
    else
      body_ << "><title>" << xml_escape(tooltip) << "</title></rect>\n";
  }
  void circle(double x, double y, double r, const std::string& attrs,
              const std::string& tooltip = "") {
    body_ << "<circle cx=\"" << px(x) << "\" cy=\"" << px(y) << "\" r=\"" << px(r) << "\" "
          << attrs;
    if (tooltip.empty())
      body_ << "/>\n";
    else
      body_ << "><title>" << xml_escape(tooltip) << "</title></circle>\n";
  }
  void polyline(const std::vector<std::pair<double, double>>& points, const std::string& attrs) {
    body_ << "<polyline points=\"";
    for (size_t i = 0; i < points.size(); ++i)
      body_ << (i ? " " : "") << px(points[i].first) << "," << px(points[i].second);
    body_ << "\" fill=\"none\" " << attrs << "/>\n";
  }
  // anchor: start, middle or end; rotate: degrees about (x, y).
  void text(double x, double y, const std::string& s, double font, const std::string& anchor,
            const std::string& attrs = "", double rotate = 0) {
    body_ << "<text x=\"" << px(x) << "\" y=\"" << px(y) << "\" font-size=\"" << px(font)
          << "\"";
    if (anchor != "start") body_ << " text-anchor=\"" << anchor << "\"";
    if (rotate != 0)
      body_ << " transform=\"rotate(" << px(rotate) << " " << px(x) << " " << px(y) << ")\"";
    if (!attrs.empty()) body_ << " " << attrs;
    body_ << ">" << xml_escape(s) << "</text>\n";
  }
  void raw(const std::string& s) { body_ << s; }

  std::string finish(double width, double height, const std::string& title) const {
    std::ostringstream os;
    os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(std::ceil(width))
       << "\" height=\"" << px(std::ceil(height)) << "\" viewBox=\"0 0 " << px(std::ceil(width))
       << " " << px(std::ceil(height)) << "\" font-family=\"sans-serif\">\n"
       << "<title>" << xml_escape(title) << "</title>\n"
       << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
       << body_.str() << "</svg>\n";
    return os.str();
  }

 private:
  std::ostringstream body_;
};

// A linear axis over nice ticks that span the data.
struct Axis {
  std::vector<double> ticks;
  double lo = 0, hi = 1;

  Axis(const std::vector<double>& values, bool integer) {
    double mn = INFINITY, mx = -INFINITY;
    for (double v : values)
      if (std::isfinite(v)) {
        mn = std::min(mn, v);
        mx = std::max(mx, v);
      }
    // A few whole numbers (layers) get a tick each, so that the axis ends at the last one
    // rather than at the next multiple of 2 or 5.
    const bool few = integer && mn <= mx && mx - mn <= 12;
    ticks = nice_ticks(mn, mx, few ? std::max(int(mx - mn) + 1, 2) : 6, integer);
    lo = ticks.front();
    hi = ticks.back();
  }
  double step() const { return ticks[1] - ticks[0]; }
  // v's position between pixel a (at lo) and pixel b (at hi).
  double map(double v, double a, double b) const { return a + (v - lo) / (hi - lo) * (b - a); }
  double label_width() const {
    double w = 0;
    for (double t : ticks) w = std::max(w, text_width(tick_label(t, step()), kFont));
    return w;
  }
};

// The frame shared by line and scatter plots: grid, axes, tick labels and axis titles around
// the plot area [left, left + w] x [top, top + h].
void draw_axes(Svg& svg, const Axis& xa, const Axis& ya, double left, double top, double w,
               double h, const std::string& x_label, const std::string& y_label) {
  svg.raw("<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
  for (double t : xa.ticks) {
    const double x = xa.map(t, left, left + w);
    svg.line(x, top, x, top + h, "");
  }
  for (double t : ya.ticks) {
    const double y = ya.map(t, top + h, top);
    svg.line(left, y, left + w, y, "");
  }
  svg.raw("</g>\n");
  svg.line(left, top + h, left + w, top + h, "stroke=\"black\"");
  svg.line(left, top, left, top + h, "stroke=\"black\"");
  for (double t : xa.ticks) {
    const double x = xa.map(t, left, left + w);
    svg.line(x, top + h, x, top + h + 5, "stroke=\"black\"");
    svg.text(x, top + h + 19, tick_label(t, xa.step()), kFont, "middle");
  }
  for (double t : ya.ticks) {
    const double y = ya.map(t, top + h, top);
    svg.line(left - 5, y, left, y, "stroke=\"black\"");
    svg.text(left - 8, y + 4, tick_label(t, ya.step()), kFont, "end");
  }
  svg.text(left + w / 2, top + h + 40, x_label, kFont + 1, "middle");
  svg.text(18, top + h / 2, y_label, kFont + 1, "middle", "", -90);
}

void draw_title(Svg& svg, const std::string& title, double x) {
  svg.text(x, 24, title, kTitleFont, "start", "font-weight=\"bold\" class=\"title\"");
}

bool finite(double x, double y) { return std::isfinite(x) && std::isfinite(y); }

// Whether labels are "0", "1", "2", ... in order.
bool counts_up(const std::vector<std::string>& labels) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] != std::to_string(i)) return false;
  return !labels.empty();
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target, bool integer) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  MOEGRAD_CHECK(std::isfinite(hi - lo), "nice_ticks: range [", lo, ", ", hi, "] too wide");
  // A range too narrow for distinct ticks is flat: widen it around its value (from 0 to 1
  // about zero, since most plotted quantities are non-negative).
  if (hi - lo <= std::max(1e-9 * std::max(std::abs(lo), std::abs(hi)), 1e-100)) {
    const double c = (lo + hi) / 2;
    if (std::abs(c) <= 1e-100)
      lo = 0, hi = 1;
    else
      lo = c - std::abs(c) * 0.1, hi = c + std::abs(c) * 0.1;
  }
  const double raw = (hi - lo) / std::max(target - 1, 1);
  int e = int(std::floor(std::log10(raw)));
  const double f = raw / std::pow(10.0, e);
  const double slack = 1 + 1e-9;  // (0.4 - 0.1) / 3 is a hair above 0.1: still a step of 0.1
  int m = f <= slack ? 1 : f <= 2 * slack ? 2 : f <= 5 * slack ? 5 : 10;
  if (m == 10) m = 1, ++e;
  if (integer && e < 0) m = 1, e = 0;
  // k * m * 10^e computed so that 3 x 0.1 gives 0.3, not 0.30000000000000004: dividing by an
  // exact power of ten rounds once.
  const double scale = std::pow(10.0, std::abs(e));
  auto value = [&](double k) { return e >= 0 ? k * m * scale : k * m / scale; };
  const double step = value(1);
  const double k0 = std::floor(lo / step + 1e-9), k1 = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = k0; k <= k1; ++k) ticks.push_back(value(k) == 0 ? 0.0 : value(k));
  if (ticks.size() < 2) ticks.push_back(value(k0 + 1));
  return ticks;
}

std::string format_number(double v, int significant) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", std::max(significant, 1), v);
  std::string s = buf;
  // 1.5e-05 -> 1.5e-5
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
    const bool negative = exponent[0] == '-';
    exponent.erase(0, exponent.find_first_not_of("+-0"));
    s = mantissa + "e" + (negative ? "-" : "") + exponent;
  }
  return s == "-0" ? "0" : s;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      // Control characters are not allowed in XML 1.0 text at all.
      default: out += (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') ? '?' : c;
    }
  return out;
}

std::string to_svg(const LinePlot& p) {
  for (const LineSeries& s : p.series)
    MOEGRAD_CHECK(s.y.size() == p.x.size(), "LinePlot '", p.title, "': series '", s.name,
                  "' has ", s.y.size(), " values, expected one per x value (", p.x.size(), ")");
  std::vector<double> xs, ys;
  for (const LineSeries& s : p.series)
    for (size_t i = 0; i < p.x.size(); ++i)
      if (finite(p.x[i], s.y[i])) xs.push_back(p.x[i]), ys.push_back(s.y[i]);
  if (xs.empty()) xs = p.x;  // no point to place: the axis still shows the x range
  const Axis xa(xs, p.integer_x), ya(ys, false);

  // A legend taller than the plot area stretches it: 30 lines get the room the legend takes.
  const double row = 18;
  const double left = 36 + ya.label_width(), top = 44, w = 560,
               h = std::max(340.0, row * double(p.series.size())), bottom = 56;
  // Swatches long enough to show every dash pattern, dots included, on both sides of the marker.
  const double legend_x = left + w + 24, swatch = 40;
  double legend_w = 0;
  for (const LineSeries& s : p.series) legend_w = std::max(legend_w, text_width(s.name, kFont));
  const double width = std::max(legend_x + (p.series.empty() ? 0 : swatch + 8 + legend_w + 12),
                                left + text_width(p.title, kTitleFont) + 12);
  const double height =
      std::max(top + h + bottom, top + 8 + row * double(p.series.size()) + 12);

  Svg svg;
  draw_title(svg, p.title, left);
  draw_axes(svg, xa, ya, left, top, w, h, p.x_label, p.y_label);
  for (size_t k = 0; k < p.series.size(); ++k) {
    const LineSeries& s = p.series[k];
    const std::string colour = kPalette[k % kPalette.size()];
    const std::string dash = kDashes[(k / kPalette.size()) % kDashes.size()];
    const std::string stroke = "stroke=\"" + colour + "\" stroke-width=\"2\"" +
                               (dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"");
    svg.raw("<g class=\"series\"><title>" + xml_escape(s.name) + "</title>\n");
    std::vector<std::pair<double, double>> run;
    auto flush = [&] {
      if (run.size() > 1) svg.polyline(run, stroke);
      run.clear();
    };
    for (size_t i = 0; i < p.x.size(); ++i) {
      if (!finite(p.x[i], s.y[i])) {
        flush();
        continue;
      }
      run.emplace_back(xa.map(p.x[i], left, left + w), ya.map(s.y[i], top + h, top));
    }
    flush();
    // Markers make points between gaps, and a lone point, visible.
    for (size_t i = 0; i < p.x.size(); ++i)
      if (finite(p.x[i], s.y[i]))
        svg.circle(xa.map(p.x[i], left, left + w), ya.map(s.y[i], top + h, top), 2.5,
                   "fill=\"" + colour + "\"");
    svg.raw("</g>\n");
    const double y = top + 8 + row * double(k);
    svg.raw("<g class=\"legend\">\n");
    svg.line(legend_x, y, legend_x + swatch, y, stroke);
    svg.circle(legend_x + swatch / 2, y, 2.5, "fill=\"" + colour + "\"");
    svg.text(legend_x + swatch + 8, y + 4, s.name, kFont, "start");
    svg.raw("</g>\n");
  }
  return svg.finish(width, height, p.title);
}

std::string to_svg(const Heatmap& p) {
  const size_t rows = p.row_labels.size(), cols = p.column_labels.size();
  MOEGRAD_CHECK(p.values.size() == rows, "Heatmap '", p.title, "': ", p.values.size(),
                " rows of values, expected one per row label (", rows, ")");
  for (size_t r = 0; r < rows; ++r)
    MOEGRAD_CHECK(p.values[r].size() == cols, "Heatmap '", p.title, "': row ", r, " ('",
                  p.row_labels[r], "') has ", p.values[r].size(),
                  " values, expected one per column label (", cols, ")");
  MOEGRAD_CHECK(p.cell_text.empty() || p.cell_text.size() == rows, "Heatmap '", p.title, "': ",
                p.cell_text.size(), " rows of cell text, expected ", rows);
  for (const auto& row : p.cell_text)
    MOEGRAD_CHECK(row.size() == cols, "Heatmap '", p.title, "': a row of ", row.size(),
                  " cell texts, expected ", cols);
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& row : p.values)
    for (double v : row)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  const bool any = lo <= hi;
  // Rounding noise (a JSD of -5e-17 on the diagonal) is shown as the 0 it stands for.
  const double noise = any ? 1e-9 * std::max(std::abs(lo), std::abs(hi)) : 0;
  auto shown = [&](double v) { return std::abs(v) <= noise ? 0.0 : v; };

  // Cell texts are always written: the cells grow to hold them.
  const bool texts = !p.cell_text.empty();
  const bool annotate = texts || (p.annotate && rows <= 12 && cols <= 12);
  double text_w = 0;
  for (const auto& row : p.cell_text)
    for (const std::string& t : row) text_w = std::max(text_w, text_width(t, 11));
  const double cw = cols == 0 ? 0
                    : texts    ? std::max(text_w + 8, 28.0)
                    : annotate ? std::clamp(560.0 / double(cols), 44.0, 64.0)
                               : std::clamp(640.0 / double(cols), 10.0, 48.0);
  const double ch = rows == 0 ? 0
                    : texts    ? 22.0
                    : annotate ? std::clamp(340.0 / double(rows), 24.0, 40.0)
                               : std::clamp(360.0 / double(rows), 14.0, 32.0);
  const double row_font = std::min(kFont, std::max(ch - 2, 8.0));
  // Columns labelled 0, 1, 2, ... (experts) are positions: when too narrow for a full-size
  // label each, only every k-th is labelled, k the smallest power of two that leaves it room,
  // with a tick; 128 numbers squeezed upright into 10-pixel columns are not legible. Other
  // labels (languages) are all written, smaller and upright if need be.
  size_t every = 1;
  if (counts_up(p.column_labels)) {
    double widest = 0;
    for (const std::string& l : p.column_labels) widest = std::max(widest, text_width(l, kFont));
    if (widest > cw - 4)
      while (every < cols && double(every) * cw < widest + 6) every *= 2;
  }
  const double col_font = every > 1 ? kFont : std::min(kFont, std::max(cw - 1, 8.0));
  double row_w = 0, col_w = 0;
  for (const std::string& l : p.row_labels) row_w = std::max(row_w, text_width(l, row_font));
  for (const std::string& l : p.column_labels) col_w = std::max(col_w, text_width(l, col_font));
  const bool rotate = every == 1 && col_w > cw - 4;
  const double col_h = rotate ? col_w + 8 : col_font + (every > 1 ? 12 : 8);

  const double left = 36 + row_w + 8, top = 44;
  const double gw = cw * double(cols), gh = ch * double(rows);
  const double bar_x = left + gw + 20, bar_h = std::max(gh, 120.0), bar_w = 14;
  double bar_label_w = 0;
  const std::vector<double> bar_ticks =
      !any ? std::vector<double>{} : lo == hi ? std::vector<double>{lo}
                                              : std::vector<double>{lo, (lo + hi) / 2, hi};
  for (double t : bar_ticks)
    bar_label_w = std::max(bar_label_w, text_width(format_number(shown(t), 3), kFont));
  const double width = std::max(bar_x + bar_w + 8 + bar_label_w + 30,
                                text_width(p.title, kTitleFont) + 24);
  const double height = top + std::max(gh + col_h + 30, bar_h + 10);

  Svg svg;
  draw_title(svg, p.title, 12);
  if (rows == 0 || cols == 0) {
    svg.text(left, top + 30, "no data", kFont, "start");
    return svg.finish(std::max(width, left + 80), std::max(height, top + 60), p.title);
  }
  auto colour_of = [&](double v) {
    if (!std::isfinite(v)) return std::array<double, 3>{217, 217, 217};
    return viridis(hi > lo ? (v - lo) / (hi - lo) : 0.5);
  };
  // crispEdges: anti-aliased edges of adjacent cells let the white background through as
  // hairlines whenever the figure is scaled.
  svg.raw("<g class=\"cells\" shape-rendering=\"crispEdges\">\n");
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      const double v = p.values[r][c];
      const std::string fill = std::isfinite(v) ? hex_colour(colour_of(v)) : kMissing;
      svg.rect(left + cw * double(c), top + ch * double(r), cw, ch,
               "class=\"cell\" fill=\"" + fill + "\"",
               p.row_labels[r] + ", " + p.column_labels[c] + ": " +
                   (std::isfinite(v) ? format_number(shown(v)) : "no value"));
    }
  svg.raw("</g>\n");
  if (annotate)
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) {
        const double v = p.values[r][c];
        if (!std::isfinite(v)) continue;
        const std::array<double, 3> rgb = colour_of(v);
        const double luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
        svg.text(left + cw * (double(c) + 0.5), top + ch * (double(r) + 0.5) + 4,
                 texts ? p.cell_text[r][c] : format_number(shown(v), 2), 11, "middle",
                 luminance < 140 ? "fill=\"white\"" : "fill=\"black\"");
      }
  for (size_t r = 0; r < rows; ++r)
    svg.text(left - 6, top + ch * (double(r) + 0.5) + row_font * 0.35, p.row_labels[r], row_font,
             "end");
  for (size_t c = 0; c < cols; c += every) {
    const double x = left + cw * (double(c) + 0.5);
    if (every > 1) {
      svg.line(x, top + gh, x, top + gh + 4, "stroke=\"black\"");
      svg.text(x, top + gh + col_font + 7, p.column_labels[c], col_font, "middle");
    } else if (rotate)
      svg.text(x + col_font * 0.35, top + gh + 6, p.column_labels[c], col_font, "end", "", -90);
    else
      svg.text(x, top + gh + col_font + 4, p.column_labels[c], col_font, "middle");
  }
  svg.text(left + gw / 2, top + gh + col_h + 20, p.x_label, kFont + 1, "middle");
  svg.text(18, top + gh / 2, p.y_label, kFont + 1, "middle", "", -90);

  // The bar's gradient runs through the same stops the cells are interpolated between.
  svg.raw("<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">");
  for (size_t i = 0; i < kViridis.size(); ++i)
    svg.raw("<stop offset=\"" + format_number(double(i) / double(kViridis.size() - 1)) +
            "\" stop-color=\"" + hex_colour(kViridis[i]) + "\"/>");
  svg.raw("</linearGradient></defs>\n");
  const std::string bar_fill = !any       ? kMissing
                              : lo == hi ? hex_colour(colour_of(lo))
                                         : "url(#scale)";
  svg.rect(bar_x, top, bar_w, bar_h, "fill=\"" + bar_fill + "\" stroke=\"black\"");
  for (double t : bar_ticks) {
    const double y = hi > lo ? top + bar_h * (1 - (t - lo) / (hi - lo)) : top + bar_h / 2;
    svg.line(bar_x + bar_w, y, bar_x + bar_w + 4, y, "stroke=\"black\"");
    svg.text(bar_x + bar_w + 7, y + 4, format_number(shown(t), 3), kFont, "start");
  }
  svg.text(bar_x + bar_w + 14 + bar_label_w, top + bar_h / 2, p.value_label, kFont, "middle", "",
           90);
  return svg.finish(width, height, p.title);
}

std::string to_svg(const ScatterPlot& p) {
  std::vector<ScatterPoint> pts;
  for (const ScatterPoint& q : p.points)
    if (finite(q.x, q.y)) pts.push_back(q);
  std::vector<double> xs, ys;
  for (const ScatterPoint& q : pts) xs.push_back(q.x), ys.push_back(q.y);
  const Axis xa(xs, false), ya(ys, false);
  // The least-squares line through the points, across their x range, clipped to the axes.
  bool fit = false;
  double x0 = 0, x1 = 0, a = 0, b = 0;
  if (p.fit_line && pts.size() >= 2) {
    double mx = 0, my = 0;
    for (const ScatterPoint& q : pts) mx += q.x, my += q.y;
    mx /= double(pts.size());
    my /= double(pts.size());
    double sxx = 0, sxy = 0;
    for (const ScatterPoint& q : pts)
      sxx += (q.x - mx) * (q.x - mx), sxy += (q.x - mx) * (q.y - my);
    x0 = *std::min_element(xs.begin(), xs.end());
    x1 = *std::max_element(xs.begin(), xs.end());
    if (sxx > 0 && x1 > x0) {
      b = sxy / sxx;
      a = my - b * mx;
      if (b != 0) {
        const double at_lo = (ya.lo - a) / b, at_hi = (ya.hi - a) / b;
        x0 = std::max(x0, std::min(at_lo, at_hi));
        x1 = std::min(x1, std::max(at_lo, at_hi));
      }
      fit = x1 > x0 && std::isfinite(a + b * x0) && std::isfinite(a + b * x1);
    }
  }

  const double top = p.caption.empty() ? 44 : 62, w = 480, h = 360, bottom = 56;
  const double left = 36 + ya.label_width();
  double label_w = 0;
  for (const ScatterPoint& q : pts) label_w = std::max(label_w, text_width(q.label, 10));
  const double width =
      std::max({left + w + 12 + label_w, left + text_width(p.title, kTitleFont) + 12,
                left + text_width(p.caption, kFont) + 12});
  Svg svg;
  draw_title(svg, p.title, left);
  if (!p.caption.empty()) svg.text(left, 44, p.caption, kFont, "start", "class=\"caption\"");
  draw_axes(svg, xa, ya, left, top, w, h, p.x_label, p.y_label);
  if (fit)
    svg.line(xa.map(x0, left, left + w), ya.map(a + b * x0, top + h, top),
             xa.map(x1, left, left + w), ya.map(a + b * x1, top + h, top),
             "class=\"fit\" stroke=\"#888888\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");

  // Labels go beside their point where they cover no other label or point, trying the four
  // corners and the two sides in turn; a label with no free place is left to the point's
  // tooltip, so that 400 pairs of 30 languages stay a readable cloud.
  struct Box {
    double x0, y0, x1, y1;
    bool hits(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
  };
  std::vector<std::pair<double, double>> at;
  std::vector<Box> taken;
  for (const ScatterPoint& q : pts) {
    at.emplace_back(xa.map(q.x, left, left + w), ya.map(q.y, top + h, top));
    taken.push_back({at.back().first - 4, at.back().second - 4, at.back().first + 4,
                     at.back().second + 4});
  }
  const Box area{left, top - 4, width, top + h};
  svg.raw("<g class=\"points\">\n");
  for (size_t i = 0; i < pts.size(); ++i)
    svg.circle(at[i].first, at[i].second, 4,
               std::string("fill=\"") + kPalette[1] + "\" fill-opacity=\"0.8\"",
               (pts[i].label.empty() ? "" : pts[i].label + ": ") + format_number(pts[i].x) +
                   ", " + format_number(pts[i].y));
  svg.raw("</g>\n<g class=\"labels\">\n");
  for (size_t i = 0; i < pts.size(); ++i) {
    if (pts[i].label.empty()) continue;
    const double tw = text_width(pts[i].label, 10), x = at[i].first, y = at[i].second;
    // (baseline x, baseline y, anchored at its end)
    const std::array<std::tuple<double, double, bool>, 6> places = {
        {{x + 6, y - 5, false}, {x + 6, y + 13, false}, {x - 6, y - 5, true},
         {x - 6, y + 13, true}, {x + 7, y + 4, false}, {x - 7, y + 4, true}}};
    for (const auto& [bx, by, end] : places) {
      const Box box{end ? bx - tw : bx, by - 9, end ? bx : bx + tw, by + 2};
      if (box.x0 < area.x0 || box.x1 > area.x1 || box.y0 < area.y0 || box.y1 > area.y1)
        continue;
      if (std::any_of(taken.begin(), taken.end(), [&](const Box& o) { return o.hits(box); }))
        continue;
      taken.push_back(box);
      svg.text(bx, by, pts[i].label, 10, end ? "end" : "start");
      break;
    }
  }
  svg.raw("</g>\n");
  return svg.finish(width, top + h + bottom, p.title);
}

}  // namespace moegrad::eval
