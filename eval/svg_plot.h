// Figures as SVG text, written natively so that a run's report needs no Python: line plots,
// heatmaps and scatter plots, each a plain struct of data and titles rendered by to_svg. Sizes
// adapt to the data (a legend of 30 series, a 30 x 64 heatmap) so that every label stays legible;
// degenerate data (flat, single point, empty, all NaN) gives a sensible empty-looking plot, never
// a NaN coordinate. Malformed data (lengths that do not match) throws moegrad::Error naming the
// plot.
#pragma once
#include <string>
#include <vector>

namespace moegrad::eval {

struct LineSeries {
  std::string name;       // the legend entry
  std::vector<double> y;  // one per x; NaN leaves a gap in the line
};

// Series told apart by colour (a colour-blind-safe palette) and, once the palette is used up,
// by dash pattern; the legend sits right of the plot area, one row per series.
struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<double> x;  // increasing
  std::vector<LineSeries> series;
  bool integer_x = false;  // x ticks at whole numbers only (layers, steps)
};

// values[row][column] on a sequential (viridis-like) colour scale from the smallest to the
// largest finite value, with a colour bar; NaN cells are grey. Small matrices (at most 12 x 12)
// have their values written in the cells when annotate.
struct Heatmap {
  std::string title, x_label, y_label;  // x: the columns, y: the rows
  std::vector<std::string> row_labels, column_labels;
  std::vector<std::vector<double>> values;
  std::string value_label;  // what the colours mean, beside the colour bar
  bool annotate = true;
  // Text written in each cell instead of its value (values' shape; empty: none), whatever
  // the size: the cells grow to hold it.
  std::vector<std::vector<std::string>> cell_text;
};

struct ScatterPoint {
  double x = 0, y = 0;  // a point with a NaN coordinate is left out
  std::string label;    // written beside the point when not empty
};

struct ScatterPlot {
  std::string title, x_label, y_label;
  std::vector<ScatterPoint> points;
  bool fit_line = false;  // the least-squares line y = a + b x, when x is not constant
  std::string caption;    // under the title, e.g. "Pearson r = -0.76"
};

std::string to_svg(const LinePlot& plot);
std::string to_svg(const Heatmap& plot);
std::string to_svg(const ScatterPlot& plot);

// The building blocks, public for the tests and for callers that label things themselves.

// Tick values covering [lo, hi] at a "nice" step (1, 2 or 5 x 10^k) giving about `target`
// ticks; the first tick is <= lo and the last >= hi, so the axis spans them. A flat or
// non-finite range is widened first. Steps are at least 1 when integer.
std::vector<double> nice_ticks(double lo, double hi, int target = 6, bool integer = false);
// v with `significant` digits at most and no trailing zeros: 0.3, 1200, 1.5e-5, -0.76.
std::string format_number(double v, int significant = 4);
// &, <, >, " and ' as entities.
std::string xml_escape(const std::string& text);

}  // namespace moegrad::eval
