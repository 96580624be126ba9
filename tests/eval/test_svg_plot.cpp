// The SVG plots at the level of their text: well-formed tags, escaped labels, nice ticks, no
// NaN coordinate for degenerate data, one cell per heatmap value, and the size errors.
#include <cmath>
#include <regex>
#include <set>

#include "eval/svg_plot.h"
#include "tests/testing.h"

namespace moegrad::eval {
namespace {

// Every tag closed in order, every '&' an entity, nothing after the root: what a browser's
// XML parser would insist on for the parts our plots use.
::testing::AssertionResult well_formed(const std::string& svg) {
  if (svg.rfind("<svg", 0) != 0) return ::testing::AssertionFailure() << "does not start <svg";
  std::vector<std::string> open;
  size_t i = 0;
  while ((i = svg.find('<', i)) != std::string::npos) {
    const size_t end = svg.find('>', i);
    if (end == std::string::npos) return ::testing::AssertionFailure() << "unclosed < at " << i;
    const std::string tag = svg.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos)
      return ::testing::AssertionFailure() << "< inside tag: " << tag;
    const bool closing = tag[0] == '/', self = tag.back() == '/';
    const std::string name =
        tag.substr(closing, tag.find_first_of(" /\n", closing) - size_t(closing));
    if (closing) {
      if (open.empty() || open.back() != name)
        return ::testing::AssertionFailure()
               << "</" << name << "> closes " << (open.empty() ? "nothing" : open.back());
      open.pop_back();
      if (open.empty() && svg.find_first_not_of(" \n", end + 1) != std::string::npos)
        return ::testing::AssertionFailure() << "text after </svg>";
    } else if (!self) {
      open.push_back(name);
    }
    i = end + 1;
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
  static const std::regex entity("&(amp|lt|gt|quot|apos);");
  for (size_t a = svg.find('&'); a != std::string::npos; a = svg.find('&', a + 1))
    if (!std::regex_search(svg.begin() + long(a), svg.end(), entity,
                           std::regex_constants::match_continuous))
      return ::testing::AssertionFailure() << "bare & at " << a;
  return ::testing::AssertionSuccess();
}

// The numeric attributes (positions, sizes, point lists, transforms) hold only finite numbers.
::testing::AssertionResult finite_coordinates(const std::string& svg) {
  static const std::regex attr(
      R"re(\b(x|y|x1|y1|x2|y2|cx|cy|r|width|height|points|transform|viewBox)="([^"]*)")re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), attr), end; it != end; ++it) {
    std::string v = (*it)[2];
    if (v == "100%") continue;
    for (char& c : v) c = char(std::tolower(c));
    if (v.find("nan") != std::string::npos || v.find("inf") != std::string::npos)
      return ::testing::AssertionFailure() << (*it)[0];
  }
  return ::testing::AssertionSuccess();
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t i = s.find(needle); i != std::string::npos; i = s.find(needle, i + 1)) ++n;
  return n;
}

double svg_height(const std::string& svg) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(svg, m, std::regex(R"re(height="([0-9.]+)")re")));
  return std::stod(m[1]);
}

bool nice_step(double step) {
  const double m = step / std::pow(10.0, std::floor(std::log10(step)));
  return std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 5) < 1e-9;
}

TEST(SvgPlot, TicksAreNiceNumbersSpanningTheRange) {
  struct Case {
    double lo, hi;
    bool integer;
  };
  for (const Case& c : std::vector<Case>{{0, 1, false},
                                         {0.13, 0.97, false},
                                         {-3.7, 12.2, false},
                                         {1e6, 1e6 + 7, false},
                                         {0.001, 0.0042, false},
                                         {0, 3, true},
                                         {0, 1200, true},
                                         {0.3, 0.3, false},
                                         {0, 0, false},
                                         {5, 5, true}}) {
    const std::vector<double> t = nice_ticks(c.lo, c.hi, 6, c.integer);
    SCOPED_TRACE(std::to_string(c.lo) + ".." + std::to_string(c.hi));
    ASSERT_GE(t.size(), 2u);
    EXPECT_LE(t.size(), 13u);
    EXPECT_LE(t.front(), c.lo);
    EXPECT_GE(t.back(), c.hi);
    const double step = t[1] - t[0];
    EXPECT_TRUE(nice_step(step)) << step;
    if (c.integer) {
      EXPECT_GE(step, 1.0);
    }
    for (double v : t) EXPECT_NEAR(v / step, std::round(v / step), 1e-6) << v;
  }
  // Multiples of a decimal step are the decimals themselves, not 0.30000000000000004.
  const std::vector<double> t = nice_ticks(0, 1, 6);
  EXPECT_EQ(t, (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(nice_ticks(0.1, 0.4, 4)[2], 0.3);
  EXPECT_EQ(nice_ticks(0, 0).back(), 1.0);  // a flat zero range becomes [0, 1]
  EXPECT_EQ(nice_ticks(NAN, INFINITY).back(), 1.0);
}

TEST(SvgPlot, NumbersAreCompactAndTextIsEscaped) {
  EXPECT_EQ(format_number(0.1 + 0.2), "0.3");
  EXPECT_EQ(format_number(1200), "1200");
  EXPECT_EQ(format_number(1.5e-5), "1.5e-5");
  EXPECT_EQ(format_number(123456), "1.235e5");
  EXPECT_EQ(format_number(-0.76), "-0.76");
  EXPECT_EQ(format_number(-0.0), "0");
  EXPECT_EQ(format_number(0.123456, 2), "0.12");
  EXPECT_EQ(xml_escape("a<b & c>\"d'"), "a&lt;b &amp; c&gt;&quot;d&apos;");
  EXPECT_EQ(xml_escape("\x01ру"), "?ру");  // UTF-8 passes through
}

TEST(SvgPlot, LinePlotHasTitlesLegendAndEscapedLabels) {
  LinePlot p{"JSD <from> en & co", "layer", "JSD (nats)", {0, 1, 2, 3}, {}, true};
  p.series = {{"de", {0.1, 0.05, 0.02, 0.12}}, {"x<y&z", {0.2, NAN, 0.1, 0.3}}};
  const std::string svg = to_svg(p);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_TRUE(finite_coordinates(svg));
  EXPECT_NE(svg.find("JSD &lt;from&gt; en &amp; co"), std::string::npos);
  EXPECT_EQ(svg.find("<from>"), std::string::npos);
  EXPECT_NE(svg.find(">layer<"), std::string::npos);
  EXPECT_NE(svg.find(">JSD (nats)<"), std::string::npos);
  EXPECT_NE(svg.find(">de<"), std::string::npos);
  EXPECT_NE(svg.find(">x&lt;y&amp;z<"), std::string::npos);
  // de is one line; the gap splits x<y&z into a lone point (a marker only) and a line.
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_EQ(count(svg, "<circle"), 4u + 3u + 2u);  // markers, and one per legend entry
  // Integer x ticks: layers only, no 0.5.
  EXPECT_NE(svg.find(">3</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">0.5</text>"), std::string::npos);
}

TEST(SvgPlot, ThirtySeriesStayDistinctAndTheLegendGrows) {
  LinePlot p{"many", "layer", "entropy", {0, 1, 2}, {}, true};
  for (int i = 0; i < 30; ++i)
    p.series.push_back({"lang" + std::to_string(i), {double(i), double(i) + 1, double(i) / 2}});
  const std::string svg = to_svg(p);
  EXPECT_TRUE(well_formed(svg));
  std::set<std::string> styles;
  const std::regex line(R"re(<polyline points="([^"]*)" fill="none" (stroke="[^"]*"[^/]*)/>)re");
  double data_right = 0;
  for (std::sregex_iterator it(svg.begin(), svg.end(), line), end; it != end; ++it) {
    styles.insert((*it)[2]);
    const std::string pts = (*it)[1];
    const std::regex xy(R"(([0-9.]+),)");
    for (std::sregex_iterator q(pts.begin(), pts.end(), xy); q != end; ++q)
      data_right = std::max(data_right, std::stod((*q)[1]));
  }
  EXPECT_EQ(styles.size(), 30u);
  // The legend's swatches start right of every data point.
  const std::regex swatch(R"re(<g class="legend">\n<line x1="([0-9.]+)")re");
  size_t swatches = 0;
  for (std::sregex_iterator it(svg.begin(), svg.end(), swatch), end; it != end; ++it, ++swatches)
    EXPECT_GT(std::stod((*it)[1]), data_right);
  EXPECT_EQ(swatches, 30u);
  // The plot area is as tall as the legend: the x axis lies below the last entry.
  std::smatch m;
  const std::regex x_axis(
      R"re(<line x1="[0-9.]+" y1="([0-9.]+)" x2="[0-9.]+" y2="\1" stroke="black"/>)re");
  ASSERT_TRUE(std::regex_search(svg, m, x_axis));
  const double axis_y = std::stod(m[1]);
  ASSERT_TRUE(std::regex_search(svg, m, std::regex(R"re(y="([0-9.]+)" font-size="12">lang29<)re")));
  EXPECT_GT(axis_y, std::stod(m[1]));
  p.series.resize(2);
  EXPECT_GT(svg_height(svg), svg_height(to_svg(p)));
}

TEST(SvgPlot, FortyFiveSeriesHaveFortyFiveStyles) {
  LinePlot p{"many", "layer", "entropy", {0, 1}, {}, true};
  for (int i = 0; i < 45; ++i) p.series.push_back({"s" + std::to_string(i), {0, double(i)}});
  const std::string svg = to_svg(p);
  std::set<std::string> styles;
  const std::regex line(R"re(<polyline points="[^"]*" fill="none" (stroke="[^"]*"[^/]*)/>)re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), line), end; it != end; ++it)
    styles.insert((*it)[1]);
  EXPECT_EQ(styles.size(), 45u);
}

TEST(SvgPlot, FewIntegerTicksEndAtTheLastLayer) {
  LinePlot p{"layers", "layer", "JSD", {0, 1, 2, 3, 4, 5, 6, 7}, {}, true};
  p.series = {{"de", {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}}};
  const std::string svg = to_svg(p);
  for (int layer = 0; layer < 8; ++layer)
    EXPECT_NE(svg.find(">" + std::to_string(layer) + "</text>"), std::string::npos) << layer;
  EXPECT_EQ(svg.find(">8</text>"), std::string::npos);  // no empty column after the last layer
  // Many steps still get a handful of nice ticks.
  p.x = {0, 100, 200, 300, 400, 500, 600, 700};
  EXPECT_NE(to_svg(p).find(">200</text>"), std::string::npos);
  EXPECT_EQ(to_svg(p).find(">100</text>"), std::string::npos);
}

TEST(SvgPlot, DegenerateLinePlotsHaveFiniteCoordinates) {
  std::vector<LinePlot> plots = {
      {"flat", "x", "y", {0, 1, 2}, {{"a", {0.3, 0.3, 0.3}}}},
      {"zero", "x", "y", {0, 1, 2}, {{"a", {0, 0, 0}}}},
      {"single point", "x", "y", {4}, {{"a", {7}}}},
      {"no series", "x", "y", {0, 1}, {}},
      {"nothing", "x", "y", {}, {{"a", {}}}},
      {"all nan", "x", "y", {0, 1}, {{"a", {NAN, NAN}}}},
      {"inf", "x", "y", {0, 1}, {{"a", {INFINITY, 1}}}},
      {"nan x", "x", "y", {NAN, 1}, {{"a", {1, 2}}}},
  };
  for (const LinePlot& p : plots) {
    SCOPED_TRACE(p.title);
    const std::string svg = to_svg(p);
    EXPECT_TRUE(well_formed(svg));
    EXPECT_TRUE(finite_coordinates(svg));
  }
}

TEST(SvgPlot, LinePlotSizeMismatchNamesThePlotAndSeries) {
  const LinePlot p{"Entropy", "layer", "H", {0, 1, 2}, {{"de", {1, 2}}}};
  testing::expect_error([&] { to_svg(p); },
                        "LinePlot 'Entropy': series 'de' has 2 values, expected one per x value (3)");
}

TEST(SvgPlot, SmallHeatmapHasOneAnnotatedCellPerValueAndAColourBar) {
  Heatmap h;
  h.title = "JSD layer 3";
  h.row_labels = {"de", "en", "<fr>"};
  h.column_labels = {"0", "1", "2", "3"};
  // -5e-17: the rounding noise of a divergence from itself, shown as 0.
  h.values = {{-5e-17, 0.25, 0.5, 1}, {0.1, 0.2, 0.3, 0.4}, {0.9, 0.8, NAN, 0.6}};
  h.value_label = "JSD (nats)";
  const std::string svg = to_svg(h);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_TRUE(finite_coordinates(svg));
  EXPECT_EQ(count(svg, "class=\"cell\""), 12u);
  EXPECT_NE(svg.find(">&lt;fr&gt;<"), std::string::npos);
  EXPECT_NE(svg.find(">JSD (nats)<"), std::string::npos);
  EXPECT_NE(svg.find(">0.25<"), std::string::npos);  // a cell annotation
  // The colour bar's min, mid and max (cell annotations are smaller and centred).
  EXPECT_NE(svg.find("font-size=\"12\">0</text>"), std::string::npos);
  EXPECT_NE(svg.find("font-size=\"12\">0.5</text>"), std::string::npos);
  EXPECT_NE(svg.find("font-size=\"12\">1</text>"), std::string::npos);
  EXPECT_NE(svg.find("#d9d9d9"), std::string::npos);  // the NaN cell
  EXPECT_EQ(svg.find("e-17"), std::string::npos);
}

TEST(SvgPlot, LargeHeatmapKeepsCellsLegible) {
  Heatmap h;
  h.title = "usage";
  for (int r = 0; r < 30; ++r) h.row_labels.push_back("lang" + std::to_string(r));
  for (int c = 0; c < 64; ++c) h.column_labels.push_back(std::to_string(c));
  for (int r = 0; r < 30; ++r) {
    h.values.emplace_back();
    for (int c = 0; c < 64; ++c) h.values.back().push_back(double((r * 7 + c) % 11) / 64);
  }
  const std::string svg = to_svg(h);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_TRUE(finite_coordinates(svg));
  EXPECT_EQ(count(svg, "class=\"cell\""), 30u * 64u);
  EXPECT_EQ(count(svg, "font-size=\"11\" text-anchor=\"middle\""), 0u);  // no annotations
  const std::regex cell(R"re(width="([0-9.]+)" height="([0-9.]+)" class="cell")re");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, cell));
  EXPECT_GE(std::stod(m[1]), 8.0);
  EXPECT_GE(std::stod(m[2]), 8.0);
  EXPECT_NE(svg.find("rotate(-90"), std::string::npos);  // 64 column labels stand upright
  EXPECT_GE(svg_height(svg), 30 * 8.0);
  EXPECT_NE(svg.find("shape-rendering=\"crispEdges\""), std::string::npos);  // no hairlines
}

TEST(SvgPlot, ExpertColumnsAreLabelledEveryFewAtFullSize) {
  // 33 languages x 128 experts: the expert numbers of every 4th column, upright and at full
  // size with a tick; every language label.
  Heatmap h;
  h.title = "usage";
  for (int r = 0; r < 33; ++r) h.row_labels.push_back("l" + std::to_string(r));
  for (int c = 0; c < 128; ++c) h.column_labels.push_back(std::to_string(c));
  h.values.assign(33, std::vector<double>(128, 0.25));
  h.values[0][0] = 0.75;
  const std::string svg = to_svg(h);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_TRUE(finite_coordinates(svg));
  EXPECT_EQ(count(svg, "class=\"cell\""), 33u * 128u);
  const std::regex column(R"re(font-size="12" text-anchor="middle">([0-9]+)</text>)re");
  std::vector<int> labelled;
  for (std::sregex_iterator it(svg.begin(), svg.end(), column), end; it != end; ++it)
    labelled.push_back(std::stoi((*it)[1]));
  ASSERT_EQ(labelled.size(), 32u);
  for (size_t i = 0; i < labelled.size(); ++i) EXPECT_EQ(labelled[i], int(4 * i));
  EXPECT_EQ(count(svg, "rotate(-90"), 1u);  // the y axis title only
  for (int r = 0; r < 33; ++r)
    EXPECT_NE(svg.find("font-size=\"12\" text-anchor=\"end\">l" + std::to_string(r) + "<"),
              std::string::npos)
        << r;
  // Labels that are not 0, 1, 2, ... are all written, even when that means upright.
  h.column_labels[5] = "five";
  EXPECT_EQ(count(to_svg(h), "rotate(-90"), 1u + 128u);
}

TEST(SvgPlot, DegenerateHeatmapsHaveFiniteCoordinates) {
  std::vector<Heatmap> maps(4);
  maps[0].row_labels = {"a", "b"}, maps[0].column_labels = {"x"};
  maps[0].values = {{0.5}, {0.5}};  // flat
  maps[1].row_labels = {"a"}, maps[1].column_labels = {"x", "y"};
  maps[1].values = {{NAN, NAN}};
  maps[2].title = "empty";
  maps[3].row_labels = {"a"}, maps[3].column_labels = {"x"}, maps[3].values = {{INFINITY}};
  for (const Heatmap& h : maps) {
    const std::string svg = to_svg(h);
    EXPECT_TRUE(well_formed(svg));
    EXPECT_TRUE(finite_coordinates(svg));
  }
  EXPECT_NE(to_svg(maps[2]).find("no data"), std::string::npos);
}

TEST(SvgPlot, HeatmapSizeMismatchNamesThePlot) {
  Heatmap h;
  h.title = "usage layer 0";
  h.row_labels = {"de", "en"};
  h.column_labels = {"0", "1"};
  h.values = {{1, 2}};
  testing::expect_error([&] { to_svg(h); },
                        "Heatmap 'usage layer 0': 1 rows of values, expected one per row label (2)");
  h.values = {{1, 2}, {3}};
  testing::expect_error([&] { to_svg(h); },
                        "row 1 ('en') has 1 values, expected one per column label (2)");
}

// A routing trace: 16 layers x 20 tokens, each cell naming its expert, written whatever the size.
TEST(SvgPlot, HeatmapCellTextIsWrittenInEveryCellAndChecked) {
  Heatmap h;
  h.title = "trace";
  for (int l = 0; l < 16; ++l) h.row_labels.push_back(std::to_string(l));
  for (int t = 0; t < 20; ++t) h.column_labels.push_back("tok" + std::to_string(t));
  for (int l = 0; l < 16; ++l) {
    h.values.push_back(std::vector<double>(20, 0.1 * (l % 5)));
    h.cell_text.push_back(std::vector<std::string>(20, "e" + std::to_string(100 + l)));
  }
  const std::string svg = to_svg(h);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_TRUE(finite_coordinates(svg));
  for (int l = 0; l < 16; ++l)
    EXPECT_EQ(count(svg, ">e" + std::to_string(100 + l) + "<"), 20u) << l;
  h.cell_text.pop_back();
  testing::expect_error([&] { to_svg(h); }, "Heatmap 'trace': 15 rows of cell text, expected 16");
}

TEST(SvgPlot, ScatterHasLabelsFitLineAndCaption) {
  ScatterPlot p{"overlap vs JSD", "overlap", "JSD", {}, true, "r = -0.76"};
  p.points = {{0.1, 0.6, "de-fr"}, {0.4, 0.3, "en<es"}, {0.8, 0.1, ""}, {NAN, 1, "gone"}};
  const std::string svg = to_svg(p);
  EXPECT_TRUE(well_formed(svg));
  EXPECT_TRUE(finite_coordinates(svg));
  EXPECT_NE(svg.find(">de-fr<"), std::string::npos);
  EXPECT_NE(svg.find(">en&lt;es<"), std::string::npos);
  EXPECT_EQ(svg.find("gone"), std::string::npos);
  EXPECT_NE(svg.find(">r = -0.76<"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"fit\""), 1u);
  EXPECT_EQ(count(svg, "<circle"), 3u);
}

TEST(SvgPlot, CrowdedScatterLabelsGiveWayToTooltips) {
  ScatterPlot p{"crowd", "x", "y", {}, false, ""};
  for (int i = 0; i < 20; ++i) p.points.push_back({0.5, 0.5, "pair" + std::to_string(i)});
  p.points.push_back({0, 0, "low"});
  p.points.push_back({1, 1, "high"});
  const std::string svg = to_svg(p);
  EXPECT_TRUE(well_formed(svg));
  // A few labels around the crowded point, and each lone point's own.
  const size_t labels = count(svg, "font-size=\"10\"");
  EXPECT_GE(labels, 4u);
  EXPECT_LE(labels, 8u);
  EXPECT_NE(svg.find(">low</text>"), std::string::npos);
  EXPECT_NE(svg.find(">high</text>"), std::string::npos);
  EXPECT_NE(svg.find("<title>pair19: 0.5, 0.5</title>"), std::string::npos);
}

TEST(SvgPlot, DegenerateScattersHaveNoFitLine) {
  std::vector<ScatterPlot> plots = {
      {"one point", "x", "y", {{0.5, 0.5, "a"}}, true, ""},
      {"same x", "x", "y", {{0.5, 0.1, "a"}, {0.5, 0.9, "b"}}, true, ""},
      {"none", "x", "y", {}, true, ""},
      {"all nan", "x", "y", {{NAN, NAN, "a"}}, true, ""},
  };
  for (const ScatterPlot& p : plots) {
    SCOPED_TRACE(p.title);
    const std::string svg = to_svg(p);
    EXPECT_TRUE(well_formed(svg));
    EXPECT_TRUE(finite_coordinates(svg));
    EXPECT_EQ(svg.find("class=\"fit\""), std::string::npos);
  }
}

}  // namespace
}  // namespace moegrad::eval
