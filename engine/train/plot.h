// Plots of training runs that a person would rather look at than read the logs: line charts with
// 1-2-5 axis ticks, gridlines, axis titles, a legend and colour-blind-friendly (Okabe-Ito) colours,
// written as SVG (text, crisp at any zoom) and PNG (libpng, 8-bit RGB, anti-aliased lines, text from
// the embedded fonts of bitmap_font.h). Both formats come from one layout, so they look alike.
//
//   hone::plot_runs({"runs/a", "runs/b"}, "runs/compare");   // runs/compare.svg + runs/compare.png
//
// Non-finite values (NaN, inf; and y <= 0 on a log axis) are skipped: a line breaks there. A
// single point draws as a dot, a constant series gets a non-zero y range, and series with many
// more points than pixels are thinned per pixel column (keeping each column's min and max) first.
// Files are written atomically (a temporary name in the same folder, then a rename).
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace hone {

struct Series {
  std::string label;  // legend text; an empty label keeps the series out of the legend
  std::vector<double> x, y;
  bool dashed = false;
  bool markers = false;  // a dot at every point (a white-edged disc), as well as the line
  bool faint = false;    // thin and translucent: raw data under a smoothed version of it
  int color = -1;        // index into the Okabe-Ito palette; -1 = the series' position in the chart
  bool points_only = false;  // a scatter: markers without a connecting line
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_y = false;
  // The x axis covers at least [x_min, x_max] where these are finite (plot_runs gives all its
  // charts the runs' whole step range, so that charts side by side line up).
  double x_min = std::numeric_limits<double>::quiet_NaN(), x_max = std::numeric_limits<double>::quiet_NaN();
};

// A figure of one or more charts side by side (e.g. loss | accuracy). Throws std::invalid_argument
// for no charts or a size too small to draw in, std::runtime_error when the file cannot be written.
void write_svg(const std::string& path, const std::vector<Chart>& charts, int width = 1200, int height = 450);
void write_png(const std::string& path, const std::vector<Chart>& charts, int width = 1200, int height = 450);

// The charts plot_runs draws, from <run>/metrics.jsonl of each run folder: chart 1 = train loss
// (faint raw line with an EMA-smoothed solid line) and eval loss per split (dashed, with markers),
// one colour per run, the run folder's name in the legend; then the other eval metrics over steps:
// those within [0, 1] (accuracy, macro_f1, ...) together in one chart, each other one (ppl, ...)
// in a chart of its own (log y when it spans a factor of 5 or more). Throws std::runtime_error
// naming the file for a missing or unreadable metrics.jsonl, and naming the line number for a line
// that is not a JSON object.
std::vector<Chart> run_charts(const std::vector<std::string>& run_dirs);

// Writes <out_stem>.svg and <out_stem>.png of run_charts(run_dirs), 600 px wide per chart (at
// least 800) and 450 px high; creates out_stem's folder if needed.
void plot_runs(const std::vector<std::string>& run_dirs, const std::string& out_stem);

// The EMA smoothing used for train loss: a bias-corrected exponential moving average with weight
// `w` (0 = no smoothing); non-finite inputs give NaN and do not update the average.
std::vector<double> ema_smooth(const std::vector<double>& y, double w);

}  // namespace hone
