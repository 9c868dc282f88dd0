#include "engine/train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>
#include <png.h>

#include "engine/io/checkpoint.h"
#include "engine/train/bitmap_font.h"
#include "engine/train/plot_raster.h"

namespace fs = std::filesystem;

namespace hone {
namespace {

// ---- style ------------------------------------------------------------------------------------

// Okabe & Ito (2008), "Color Universal Design": distinguishable with the common colour vision
// deficiencies. Yellow, the weakest on white, comes last.
constexpr Rgb kPalette[] = {{0x00, 0x72, 0xB2}, {0xD5, 0x5E, 0x00}, {0x00, 0x9E, 0x73}, {0xCC, 0x79, 0xA7},
                            {0xE6, 0x9F, 0x00}, {0x56, 0xB4, 0xE9}, {0x00, 0x00, 0x00}, {0xF0, 0xE4, 0x42}};
constexpr int kPaletteSize = int(sizeof kPalette / sizeof kPalette[0]);

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kTitleInk{0x1A, 0x1A, 0x1A};
constexpr Rgb kAxisTitleInk{0x33, 0x33, 0x33};
constexpr Rgb kTickInk{0x55, 0x55, 0x55};
constexpr Rgb kFrame{0xB0, 0xB0, 0xB0};
constexpr Rgb kGrid{0xEB, 0xEB, 0xEB};
constexpr Rgb kLegendEdge{0xD0, 0xD0, 0xD0};

constexpr double kPad = 14;        // around each panel
constexpr double kTickLen = 5;     // outward tick marks
constexpr double kTickGap = 4;     // tick mark to its label
constexpr double kLineWidth = 2.0;
constexpr double kMarkerLineWidth = 1.5;
constexpr double kFaintWidth = 1.0;
constexpr double kFaintAlpha = 0.3;
constexpr double kMarkerR = 3.2;
constexpr double kDashOn = 6, kDashOff = 4;

Rgb series_color(const Series& s, size_t index) {
  const int i = s.color >= 0 ? s.color : int(index);
  return kPalette[i % kPaletteSize];
}

// ---- display list: what both back ends draw ---------------------------------------------------

struct PRect {  // filled, axis-aligned; pixel-aligned ones are crisp in both formats
  double x0, y0, x1, y1;
  Rgb fill;
  double alpha = 1.0;
};
struct PLine {
  std::vector<PlotPoint> pts;
  Rgb color;
  double width, alpha;
  bool dashed;
  int clip;  // index into Figure::clips
};
struct PDot {
  double x, y, r;
  Rgb color;
  double edge;  // white ring width, 0 for none
  int clip;
};
struct PText {
  double x, y;  // on the baseline
  std::string text;
  FontId font;
  Rgb color;
  TextAnchor anchor;
  bool vertical;
};
using Prim = std::variant<PRect, PLine, PDot, PText>;

struct ClipRect {
  double x0, y0, x1, y1;
};

struct Figure {
  int width, height;
  std::vector<ClipRect> clips;
  std::vector<Prim> prims;
};

// ---- axes ---------------------------------------------------------------------------------------

// The 1-2-5 step at or above raw.
double nice_step(double raw) {
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f <= 1.0 + 1e-9 ? 1.0 : f <= 2.0 + 1e-9 ? 2.0 : f <= 5.0 + 1e-9 ? 5.0 : 10.0) * mag;
}
double next_step(double step) { return nice_step(step * 1.0001); }

struct Axis {
  double lo = 0, hi = 1;  // data range of the axis (log10 of it for a log axis)
  bool log = false;
  std::vector<double> ticks;  // data values
  std::vector<std::string> labels;
};

std::string trim_number(std::string s) {
  if (s == "-0") return "0";
  return s;
}

// amax: the largest |tick| on the axis, so that all its labels use one notation.
std::string format_linear(double v, double step, double amax) {
  if (std::fabs(v) < step * 1e-6) v = 0;
  char buf[64];
  if (step >= 1e3 && v == 0) return "0";
  if (step >= 1 && amax >= 1e4) {
    const double div = amax >= 1e6 && step >= 1e3 ? 1e6 : 1e3;
    const char* suffix = div == 1e6 ? "M" : "k";
    const int dec = std::max(0, int(-std::floor(std::log10(step / div) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f%s", dec, v / div, suffix);
    return trim_number(buf);
  }
  if (step < 1e-4 || amax >= 1e7) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return trim_number(buf);
  }
  const int dec = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", dec, v);
  return trim_number(buf);
}

std::string format_log(double v) {
  char buf[64];
  const double e = std::log10(v);
  if (std::fabs(e - std::round(e)) < 1e-9 && (e < -4 || e > 5)) {
    std::snprintf(buf, sizeof buf, "1e%d", int(std::round(e)));
  } else if (v >= 1e4 && std::fabs(v / 1e3 - std::round(v / 1e3)) < 1e-9 * v) {
    std::snprintf(buf, sizeof buf, "%gk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%g", v);
  }
  return buf;
}

// Linear ticks for [lo, hi] at least min_px apart on an axis `pixels` long; label_px (optional)
// gives each label's extent along the axis, and the step grows until labels have room.
template <class Measure>
void linear_ticks(Axis& ax, double pixels, double min_px, const Measure& label_px) {
  const double range = ax.hi - ax.lo;
  double step = nice_step(range * min_px / pixels);  // the smallest 1-2-5 step at least min_px apart
  for (int guard = 0; guard < 40; ++guard) {
    ax.ticks.clear();
    ax.labels.clear();
    const double first = std::ceil(ax.lo / step - 1e-9) * step;
    for (double t = first; t <= ax.hi + step * 1e-9; t += step) {
      ax.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
      if (ax.ticks.size() > 1000) break;
    }
    double amax = 0;
    for (double t : ax.ticks) amax = std::max(amax, std::fabs(t));
    for (double t : ax.ticks) ax.labels.push_back(format_linear(t, step, amax));
    double need = 0;
    for (auto& l : ax.labels) need = std::max(need, label_px(l));
    const double step_px = step / range * pixels;
    if (step_px >= need + 12 || ax.ticks.size() <= 2) break;
    step = next_step(step);
  }
}

// Log ticks: over about a decade or more, mantissas {1,2,3,4,5,6,8}, {1,2,3,5}, {1,2,5} or just
// decades (every 1, 2, 5, ... of them), the densest that keeps ticks apart; over less, linear 1-2-5
// values placed logarithmically.
void log_ticks(Axis& ax, double pixels, double min_px) {
  const double decades = ax.hi - ax.lo;  // lo/hi are log10 here
  ax.ticks.clear();
  ax.labels.clear();
  const double px_per_decade = pixels / decades;
  if (decades >= 0.9) {
    // The densest mantissa set whose closest pair of ticks is still min_px apart; then decades
    // only, every `stride` of them.
    const std::vector<std::vector<double>> sets = {{1, 2, 3, 4, 5, 6, 8}, {1, 2, 3, 5}, {1, 2, 5}, {1}};
    auto make = [&](const std::vector<double>& mantissas, int stride) {
      std::vector<double> t;
      for (int e = int(std::floor(ax.lo)) - 1; e <= int(std::ceil(ax.hi)); ++e) {
        if (stride > 1 && ((e % stride) + stride) % stride != 0) continue;
        for (double m : mantissas) {
          const double v = m * std::pow(10.0, e), lv = std::log10(v);
          if (lv >= ax.lo - 1e-9 && lv <= ax.hi + 1e-9) t.push_back(v);
        }
      }
      return t;
    };
    auto min_gap_px = [&](const std::vector<double>& t) {
      double g = INFINITY;
      for (size_t i = 1; i < t.size(); ++i) g = std::min(g, (std::log10(t[i]) - std::log10(t[i - 1])) * px_per_decade);
      return g;
    };
    for (const auto& set : sets) {
      ax.ticks = make(set, 1);
      if (min_gap_px(ax.ticks) >= min_px * 0.7) break;
    }
    for (int stride : {2, 5, 10, 20, 50, 100}) {
      if (min_gap_px(ax.ticks) >= min_px * 0.7) break;
      ax.ticks = make({1}, stride);
    }
    for (double t : ax.ticks) ax.labels.push_back(format_log(t));
    if (ax.ticks.size() >= 2) return;
    ax.ticks.clear();
    ax.labels.clear();
  }
  const double lo = std::pow(10.0, ax.lo), hi = std::pow(10.0, ax.hi);
  double step = nice_step((hi - lo) * min_px / pixels);
  for (int guard = 0; guard < 40; ++guard) {
    ax.ticks.clear();
    for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
      if (t > 0) ax.ticks.push_back(t);
    // The densest pair of ticks is at the top of a log axis.
    bool ok = true;
    for (size_t i = 1; i < ax.ticks.size(); ++i)
      if ((std::log10(ax.ticks[i]) - std::log10(ax.ticks[i - 1])) * px_per_decade < min_px * 0.6) ok = false;
    if (ok || ax.ticks.size() <= 2) break;
    step = next_step(step);
  }
  double amax = 0;
  for (double t : ax.ticks) amax = std::max(amax, std::fabs(t));
  for (double t : ax.ticks) ax.labels.push_back(format_linear(t, step, amax));
}

// ---- layout -------------------------------------------------------------------------------------

struct Piece {  // a run of consecutive finite points, in pixels
  std::vector<PlotPoint> pts;
};

// Keeps, per pixel column, the first, lowest, highest and last point, in order.
std::vector<PlotPoint> thin(const std::vector<PlotPoint>& p, double plot_w) {
  if (double(p.size()) <= 3 * plot_w) return p;
  std::vector<PlotPoint> out;
  size_t i = 0;
  while (i < p.size()) {
    const double col = std::floor(p[i].x);
    size_t j = i, lo = i, hi = i;
    while (j < p.size() && std::floor(p[j].x) == col) {
      if (p[j].y < p[lo].y) lo = j;
      if (p[j].y > p[hi].y) hi = j;
      ++j;
    }
    std::vector<size_t> keep = {i, lo, hi, j - 1};
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    for (size_t k : keep) out.push_back(p[k]);
    i = j;
  }
  return out;
}

struct LegendEntry {
  std::string label;
  Rgb color;
  bool dashed, markers, faint, points_only = false;
};

const FontFace& F(FontId id) { return font_face(id); }

bool usable(double x, double y, bool log_y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0); }

void layout_chart(Figure& fig, const Chart& chart, double px0, double pw, double H) {
  const FontFace& small = F(FontId::kSmall);
  const FontFace& medium = F(FontId::kMedium);
  const FontFace& bold = F(FontId::kBold);

  // Data range.
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : chart.series) {
    const size_t n = std::min(s.x.size(), s.y.size());
    std::vector<double> ys;
    for (size_t i = 0; i < n; ++i) {
      if (!usable(s.x[i], s.y[i], chart.log_y)) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ys.push_back(s.y[i]);
    }
    if (ys.empty()) continue;
    std::sort(ys.begin(), ys.end());
    // Faint (raw, noisy) series: rare spikes (within the top or bottom 0.2% of values) that lie
    // more than a quarter of the others' span beyond them are clipped rather than allowed to
    // squash everything else.
    size_t lo = 0, hi = ys.size() - 1;
    if (s.faint && ys.size() >= 500) {
      const size_t cut = ys.size() / 500;
      auto t = [&](double v) { return chart.log_y ? std::log10(v) : v; };
      const double span = t(ys[hi - cut]) - t(ys[cut]);
      while (lo < cut && t(ys[lo]) < t(ys[cut]) - 0.25 * span) ++lo;
      while (hi > ys.size() - 1 - cut && t(ys[hi]) > t(ys[ys.size() - 1 - cut]) + 0.25 * span) --hi;
    }
    ymin = std::min(ymin, ys[lo]);
    ymax = std::max(ymax, ys[hi]);
  }
  const bool has_data = xmin <= xmax;
  if (has_data && std::isfinite(chart.x_min)) xmin = std::min(xmin, chart.x_min);
  if (has_data && std::isfinite(chart.x_max)) xmax = std::max(xmax, chart.x_max);
  if (!has_data) {
    xmin = 0;
    xmax = 1;
    ymin = chart.log_y ? 1 : 0;
    ymax = chart.log_y ? 10 : 1;
  }
  Axis xa, ya;
  ya.log = chart.log_y;
  {
    double lo = ya.log ? std::log10(ymin) : ymin, hi = ya.log ? std::log10(ymax) : ymax;
    if (hi - lo <= std::max(std::fabs(hi), std::fabs(lo)) * 1e-12) {  // constant (or one point)
      const double d = ya.log ? 0.05 : (lo == 0 ? 1.0 : std::fabs(lo) * 0.05);
      lo -= d;
      hi += d;
    } else {
      const double d = (hi - lo) * 0.05;
      lo -= d;
      hi += d;
    }
    ya.lo = lo;
    ya.hi = hi;
  }
  {
    double lo = xmin, hi = xmax;
    if (hi - lo <= std::max(std::fabs(hi), std::fabs(lo)) * 1e-12) {
      const double d = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
      lo -= d;
      hi += d;
    } else {
      const double d = (hi - lo) * 0.02;
      lo -= d;
      hi += d;
    }
    xa.lo = lo;
    xa.hi = hi;
  }

  // Vertical layout: title on top; x tick labels and the x axis title below.
  const double title_base = kPad + bold.cap_height();
  const double T = std::round(chart.title.empty() ? kPad + 6 : title_base + bold.descender + 14);
  const double x_title_base = H - kPad - medium.descender;
  const double x_label_base = x_title_base - medium.cap_height() - 10 - small.descender;
  const double B = std::round(x_label_base - small.cap_height() - kTickGap - kTickLen);
  const double plot_h = B - T;

  if (ya.log) {
    log_ticks(ya, plot_h, 34);
  } else {
    linear_ticks(ya, plot_h, 44, [&](const std::string&) { return double(small.cap_height()); });
  }
  int ylabel_w = 0;
  for (auto& l : ya.labels) ylabel_w = std::max(ylabel_w, small.text_width(l));

  // Horizontal layout: y axis title (reading upwards), y tick labels, plot.
  const double y_title_base = px0 + kPad + medium.cap_height();
  const double L = std::round(y_title_base + (chart.y_label.empty() ? 0 : medium.descender + 10) + ylabel_w +
                              kTickGap + kTickLen);
  double R = std::round(px0 + pw - kPad - 10);
  auto measure_x = [&](const std::string& l) { return double(small.text_width(l)); };
  linear_ticks(xa, R - L, 70, measure_x);
  // Room for the last x label, centred on its tick, inside the panel.
  if (!xa.labels.empty()) {
    const double last_px = L + (xa.ticks.back() - xa.lo) / (xa.hi - xa.lo) * (R - L);
    const double over = last_px + small.text_width(xa.labels.back()) / 2.0 - (px0 + pw - kPad / 2);
    if (over > 0) {
      R = std::round(R - over);
      linear_ticks(xa, R - L, 70, measure_x);
    }
  }
  const double plot_w = R - L;

  auto X = [&](double x) { return L + (x - xa.lo) / (xa.hi - xa.lo) * plot_w; };
  auto Y = [&](double y) { return B - ((ya.log ? std::log10(y) : y) - ya.lo) / (ya.hi - ya.lo) * plot_h; };

  // Gridlines and ticks (1 px, pixel-aligned).
  for (size_t i = 0; i < ya.ticks.size(); ++i) {
    const double py = std::floor(Y(ya.ticks[i]));
    if (py < T - 0.5 || py > B + 0.5) continue;
    const double row = std::clamp(py, T, B - 1);
    fig.prims.push_back(PRect{L, row, R, row + 1, kGrid});
    fig.prims.push_back(PRect{L - kTickLen, row, L, row + 1, kFrame});
    fig.prims.push_back(PText{L - kTickLen - kTickGap, row + 0.5 + small.cap_height() / 2.0, ya.labels[i],
                              FontId::kSmall, kTickInk, TextAnchor::kEnd, false});
  }
  for (size_t i = 0; i < xa.ticks.size(); ++i) {
    const double px = std::floor(X(xa.ticks[i]));
    if (px < L - 0.5 || px > R + 0.5) continue;
    const double col = std::clamp(px, L, R - 1);
    fig.prims.push_back(PRect{col, T, col + 1, B, kGrid});
    fig.prims.push_back(PRect{col, B, col + 1, B + kTickLen, kFrame});
    fig.prims.push_back(PText{col + 0.5, x_label_base, xa.labels[i], FontId::kSmall, kTickInk,
                              TextAnchor::kMiddle, false});
  }

  // Series: faint ones first, then lines, then the ones with markers on top.
  const int clip = int(fig.clips.size());
  fig.clips.push_back({L, T, R, B});
  std::vector<LegendEntry> legend;
  std::vector<PlotPoint> occupied;  // pixel samples of everything drawn, for placing the legend
  std::vector<int> weight;          // per sample: faint lines matter less than the others
  std::vector<size_t> order(chart.series.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto rank = [&](size_t i) { return chart.series[i].faint ? 0 : chart.series[i].markers ? 2 : 1; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rank(a) < rank(b); });
  for (size_t i : order) {
    const Series& s = chart.series[i];
    const Rgb c = series_color(s, i);
    const double width = s.faint ? kFaintWidth : s.markers ? kMarkerLineWidth : kLineWidth;
    const double alpha = s.faint ? kFaintAlpha : 1.0;
    std::vector<Piece> pieces(1);
    const size_t n = std::min(s.x.size(), s.y.size());
    size_t total = 0;
    for (size_t k = 0; k < n; ++k) {
      if (!usable(s.x[k], s.y[k], chart.log_y)) {
        if (!pieces.back().pts.empty()) pieces.emplace_back();
        continue;
      }
      pieces.back().pts.push_back({X(s.x[k]), Y(s.y[k])});
      ++total;
    }
    const bool markers = s.points_only || (s.markers && double(total) <= plot_w / 6);
    for (Piece& p : pieces) {
      if (p.pts.empty()) continue;
      if (s.points_only) {
        // no line
      } else if (p.pts.size() == 1 && !markers) {  // a lone point: a dot, so that it shows
        fig.prims.push_back(PDot{p.pts[0].x, p.pts[0].y, width * 1.2 + 0.8, c, 0.0, clip});
      } else {
        std::vector<PlotPoint> pts = thin(p.pts, plot_w);
        fig.prims.push_back(PLine{pts, c, width, alpha, s.dashed, clip});
      }
      for (size_t k = 1; k < p.pts.size(); ++k) {  // samples every ~6 px along the line
        const PlotPoint a = p.pts[k - 1], b = p.pts[k];
        const int m = std::clamp(int(std::hypot(b.x - a.x, b.y - a.y) / 6), 1, 60);
        for (int j = 0; j < m; ++j) occupied.push_back({a.x + (b.x - a.x) * j / m, a.y + (b.y - a.y) * j / m});
      }
      occupied.push_back(p.pts.back());
      weight.resize(occupied.size(), s.faint ? 1 : 4);
      if (markers)
        for (const PlotPoint& q : p.pts) fig.prims.push_back(PDot{q.x, q.y, kMarkerR, c, 1.3, clip});
    }
    if (!s.label.empty()) legend.push_back({s.label, c, s.dashed, s.markers || s.points_only, s.faint, s.points_only});
  }
  if (!has_data)
    fig.prims.push_back(PText{(L + R) / 2, (T + B) / 2 + medium.cap_height() / 2.0, "no data", FontId::kMedium,
                              kTickInk, TextAnchor::kMiddle, false});

  // Frame.
  fig.prims.push_back(PRect{L, T, R, T + 1, kFrame});
  fig.prims.push_back(PRect{L, B - 1, R, B, kFrame});
  fig.prims.push_back(PRect{L, T, L + 1, B, kFrame});
  fig.prims.push_back(PRect{R - 1, T, R, B, kFrame});

  // Titles.
  if (!chart.title.empty())
    fig.prims.push_back(PText{(L + R) / 2, title_base, chart.title, FontId::kBold, kTitleInk, TextAnchor::kMiddle, false});
  if (!chart.x_label.empty())
    fig.prims.push_back(PText{(L + R) / 2, x_title_base, chart.x_label, FontId::kMedium, kAxisTitleInk,
                              TextAnchor::kMiddle, false});
  if (!chart.y_label.empty())
    fig.prims.push_back(PText{y_title_base, (T + B) / 2, chart.y_label, FontId::kMedium, kAxisTitleInk,
                              TextAnchor::kMiddle, true});

  // Legend: in whichever inside corner covers the fewest drawn samples (upper right on a tie).
  if (!legend.empty()) {
    const double row_h = 18, swatch = 26, inset = 8;
    int text_w = 0;
    for (auto& e : legend) text_w = std::max(text_w, small.text_width(e.label));
    const double bw = std::round(10 + swatch + 8 + text_w + 10), bh = std::round(6 + row_h * legend.size() + 4);
    const double cand[4][2] = {{R - inset - bw, T + inset}, {L + inset, T + inset}, {R - inset - bw, B - inset - bh},
                               {L + inset, B - inset - bh}};
    int best = 0;
    size_t best_hits = SIZE_MAX;
    for (int k = 0; k < 4; ++k) {
      size_t hits = 0;
      for (size_t i = 0; i < occupied.size(); ++i) {
        const PlotPoint& p = occupied[i];
        if (p.x >= cand[k][0] - 3 && p.x <= cand[k][0] + bw + 3 && p.y >= cand[k][1] - 3 && p.y <= cand[k][1] + bh + 3)
          hits += weight[i];
      }
      if (hits < best_hits) {
        best_hits = hits;
        best = k;
      }
    }
    const double bx = std::round(cand[best][0]), by = std::round(cand[best][1]);
    fig.prims.push_back(PRect{bx, by, bx + bw, by + bh, kWhite, 0.88});
    fig.prims.push_back(PRect{bx, by, bx + bw, by + 1, kLegendEdge});
    fig.prims.push_back(PRect{bx, by + bh - 1, bx + bw, by + bh, kLegendEdge});
    fig.prims.push_back(PRect{bx, by, bx + 1, by + bh, kLegendEdge});
    fig.prims.push_back(PRect{bx + bw - 1, by, bx + bw, by + bh, kLegendEdge});
    for (size_t k = 0; k < legend.size(); ++k) {
      const LegendEntry& e = legend[k];
      const double cy = by + 6 + row_h * k + row_h / 2;
      const double sx0 = bx + 10, sx1 = sx0 + swatch;
      const double width = e.faint ? kFaintWidth + 0.5 : e.markers ? kMarkerLineWidth : kLineWidth;
      if (!e.points_only)
        fig.prims.push_back(PLine{{{sx0, cy}, {sx1, cy}}, e.color, width, e.faint ? 0.5 : 1.0, e.dashed, -1});
      if (e.markers) fig.prims.push_back(PDot{(sx0 + sx1) / 2, cy, kMarkerR, e.color, 1.3, -1});
      fig.prims.push_back(PText{sx1 + 8, std::round(cy + small.cap_height() / 2.0), e.label, FontId::kSmall,
                                kAxisTitleInk, TextAnchor::kStart, false});
    }
  }
}

Figure layout(const std::vector<Chart>& charts, int width, int height) {
  if (charts.empty()) throw std::invalid_argument("plot: no charts to draw");
  const int n = int(charts.size());
  if (width < 200 * n || height < 150)
    throw std::invalid_argument("plot: " + std::to_string(width) + "x" + std::to_string(height) + " is too small for " +
                                std::to_string(n) + " chart(s) (at least 200 px wide each and 150 px high)");
  Figure fig{width, height, {}, {}};
  for (int i = 0; i < n; ++i) {
    const double x0 = std::round(double(width) * i / n), x1 = std::round(double(width) * (i + 1) / n);
    layout_chart(fig, charts[i], x0, x1 - x0, height);
  }
  return fig;
}

// ---- SVG ----------------------------------------------------------------------------------------

std::string hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}
std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;
    }
  }
  return out;
}

std::string render_svg(const Figure& fig) {
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(fig.width) + "\" height=\"" +
       std::to_string(fig.height) + "\" viewBox=\"0 0 " + std::to_string(fig.width) + " " + std::to_string(fig.height) +
       "\" font-family=\"DejaVu Sans, Verdana, Geneva, Arial, Helvetica, sans-serif\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<defs>\n";
  for (size_t i = 0; i < fig.clips.size(); ++i) {
    const ClipRect& c = fig.clips[i];
    o += "<clipPath id=\"plot" + std::to_string(i) + "\"><rect x=\"" + num(c.x0) + "\" y=\"" + num(c.y0) +
         "\" width=\"" + num(c.x1 - c.x0) + "\" height=\"" + num(c.y1 - c.y0) + "\"/></clipPath>\n";
  }
  o += "</defs>\n";
  auto clip_attr = [](int clip) {
    return clip >= 0 ? " clip-path=\"url(#plot" + std::to_string(clip) + ")\"" : std::string();
  };
  for (const Prim& p : fig.prims) {
    if (auto* r = std::get_if<PRect>(&p)) {
      o += "<rect x=\"" + num(r->x0) + "\" y=\"" + num(r->y0) + "\" width=\"" + num(r->x1 - r->x0) + "\" height=\"" +
           num(r->y1 - r->y0) + "\" fill=\"" + hex(r->fill) + "\"" +
           (r->alpha < 1 ? " fill-opacity=\"" + num(r->alpha) + "\"" : std::string()) +
           " shape-rendering=\"crispEdges\"/>\n";
    } else if (auto* l = std::get_if<PLine>(&p)) {
      o += "<polyline fill=\"none\" stroke=\"" + hex(l->color) + "\" stroke-width=\"" + num(l->width) + "\"";
      if (l->alpha < 1) o += " stroke-opacity=\"" + num(l->alpha) + "\"";
      if (l->dashed) o += " stroke-dasharray=\"" + num(kDashOn) + " " + num(kDashOff) + "\"";
      o += " stroke-linejoin=\"round\" stroke-linecap=\"round\"" + clip_attr(l->clip) + " points=\"";
      for (size_t i = 0; i < l->pts.size(); ++i) {
        if (i) o += ' ';
        o += num(l->pts[i].x) + "," + num(l->pts[i].y);
      }
      if (l->pts.size() == 1) o += " " + num(l->pts[0].x) + "," + num(l->pts[0].y);
      o += "\"/>\n";
    } else if (auto* d = std::get_if<PDot>(&p)) {
      o += "<circle cx=\"" + num(d->x) + "\" cy=\"" + num(d->y) + "\" r=\"" + num(d->r) + "\" fill=\"" + hex(d->color) +
           "\"";
      if (d->edge > 0) o += " stroke=\"#ffffff\" stroke-width=\"" + num(d->edge) + "\"";
      o += clip_attr(d->clip) + "/>\n";
    } else if (auto* t = std::get_if<PText>(&p)) {
      const FontFace& f = font_face(t->font);
      o += "<text x=\"" + num(t->x) + "\" y=\"" + num(t->y) + "\" font-size=\"" + std::to_string(f.px) + "\"";
      if (t->font == FontId::kBold) o += " font-weight=\"bold\"";
      o += " fill=\"" + hex(t->color) + "\"";
      if (t->anchor != TextAnchor::kStart)
        o += std::string(" text-anchor=\"") + (t->anchor == TextAnchor::kMiddle ? "middle" : "end") + "\"";
      if (t->vertical) o += " transform=\"rotate(-90 " + num(t->x) + " " + num(t->y) + ")\"";
      o += ">" + xml_escape(t->text) + "</text>\n";
    }
  }
  o += "</svg>\n";
  return o;
}

// ---- PNG ----------------------------------------------------------------------------------------

Canvas render_raster(const Figure& fig) {
  Canvas cv(fig.width, fig.height, kWhite);
  auto use_clip = [&](int clip) {
    if (clip >= 0) {
      const ClipRect& c = fig.clips[clip];
      cv.set_clip(c.x0, c.y0, c.x1, c.y1);
    } else {
      cv.reset_clip();
    }
  };
  const std::vector<double> dash = {kDashOn, kDashOff};
  for (const Prim& p : fig.prims) {
    if (auto* r = std::get_if<PRect>(&p)) {
      cv.reset_clip();
      cv.fill_rect(r->x0, r->y0, r->x1, r->y1, r->fill, r->alpha);
    } else if (auto* l = std::get_if<PLine>(&p)) {
      use_clip(l->clip);
      cv.stroke_polyline(l->pts, l->width, l->color, l->alpha, l->dashed ? dash : std::vector<double>{});
    } else if (auto* d = std::get_if<PDot>(&p)) {
      use_clip(d->clip);
      // The white edge is centred on the disc's rim, like an SVG stroke.
      if (d->edge > 0) cv.fill_disc(d->x, d->y, d->r + d->edge / 2, kWhite);
      cv.fill_disc(d->x, d->y, d->edge > 0 ? d->r - d->edge / 2 : d->r, d->color);
    } else if (auto* t = std::get_if<PText>(&p)) {
      cv.reset_clip();
      cv.draw_text(t->x, t->y, t->text, font_face(t->font), t->color, t->anchor, t->vertical);
    }
  }
  return cv;
}

void ensure_parent(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
}

// ---- runs ---------------------------------------------------------------------------------------

struct Points {
  std::vector<std::pair<double, double>> v;  // (step, value), file order
  // Sorted by step; for a repeated step (a resumed run) the last value logged wins.
  void finish() {
    std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
    std::vector<std::pair<double, double>> out;
    for (auto& p : v) {
      if (!out.empty() && out.back().first == p.first)
        out.back() = p;
      else
        out.push_back(p);
    }
    v = std::move(out);
  }
  std::vector<double> xs() const {
    std::vector<double> r;
    for (auto& p : v) r.push_back(p.first);
    return r;
  }
  std::vector<double> ys() const {
    std::vector<double> r;
    for (auto& p : v) r.push_back(p.second);
    return r;
  }
};

struct RunData {
  std::string name;
  Points train;
  std::vector<std::string> splits;  // in order of appearance
  std::map<std::string, Points> eval_loss;                            // split -> loss
  std::map<std::string, std::map<std::string, Points>> eval_metrics;  // split -> metric -> points
  std::vector<std::string> metrics;                                   // in order of appearance
};

double json_number(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  return std::numeric_limits<double>::quiet_NaN();  // null: NaN/inf written by the trainer
}

RunData read_run(const std::string& dir) {
  const std::string path = (fs::path(dir) / "metrics.jsonl").string();
  std::ifstream in(path);
  if (!in) throw std::runtime_error("plot_runs: cannot open '" + path + "' (is '" + dir + "' a run folder?)");
  RunData r;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("plot_runs: " + where + ": line " + std::to_string(lineno) +
                               " is not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object())
      throw std::runtime_error("plot_runs: " + where + ": line " + std::to_string(lineno) + " is not a JSON object");
    auto st = j.find("step");
    if (st == j.end() || !st->is_number())
      throw std::runtime_error("plot_runs: " + where + ": line " + std::to_string(lineno) + " has no numeric \"step\"");
    const double step = st->get<double>();
    auto sp = j.find("split");
    if (sp != j.end()) {
      const std::string split = sp->is_string() ? sp->get<std::string>() : sp->dump();
      if (std::find(r.splits.begin(), r.splits.end(), split) == r.splits.end()) r.splits.push_back(split);
      for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        if (k == "step" || k == "split" || !(it->is_number() || it->is_null())) continue;
        if (k == "loss") {
          r.eval_loss[split].v.push_back({step, json_number(*it)});
          continue;
        }
        if (std::find(r.metrics.begin(), r.metrics.end(), k) == r.metrics.end()) r.metrics.push_back(k);
        r.eval_metrics[split][k].v.push_back({step, json_number(*it)});
      }
    } else if (auto lo = j.find("loss"); lo != j.end() && (lo->is_number() || lo->is_null())) {
      r.train.v.push_back({step, json_number(*lo)});
    }
  }
  if (in.bad()) throw std::runtime_error("plot_runs: error reading '" + path + "'");
  r.train.finish();
  for (auto& [s, p] : r.eval_loss) p.finish();
  for (auto& [s, m] : r.eval_metrics)
    for (auto& [k, p] : m) p.finish();
  return r;
}

// A run's name for the legend: its folder's name, or the last two parts where names repeat.
std::vector<std::string> run_names(const std::vector<std::string>& dirs) {
  auto parts = [](const std::string& d) {
    fs::path p = fs::path(d).lexically_normal();
    if (!p.empty() && p.filename().empty()) p = p.parent_path();
    if (p.filename() == "." || p.filename().empty()) p = fs::absolute(p).lexically_normal();
    if (!p.empty() && p.filename().empty()) p = p.parent_path();
    return p;
  };
  std::vector<std::string> names;
  std::map<std::string, int> count;
  for (auto& d : dirs) names.push_back(parts(d).filename().string());
  for (auto& n : names) ++count[n];
  for (size_t i = 0; i < dirs.size(); ++i)
    if (count[names[i]] > 1) {
      const fs::path p = parts(dirs[i]);
      const std::string parent = p.parent_path().filename().string();
      if (!parent.empty()) names[i] = parent + "/" + names[i];
    }
  return names;
}

bool spans(const std::vector<const Series*>& ss, double factor) {
  double lo = INFINITY, hi = -INFINITY;
  for (const Series* s : ss)
    for (double y : s->y) {
      if (!std::isfinite(y)) continue;
      if (y <= 0) return false;
      lo = std::min(lo, y);
      hi = std::max(hi, y);
    }
  return lo <= hi && hi / lo >= factor;
}

}  // namespace

std::vector<double> ema_smooth(const std::vector<double>& y, double w) {
  std::vector<double> out(y.size(), std::numeric_limits<double>::quiet_NaN());
  double acc = 0, norm = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) continue;
    acc = w * acc + (1 - w) * y[i];
    norm = w * norm + (1 - w);
    out[i] = acc / norm;
  }
  return out;
}

void write_svg(const std::string& path, const std::vector<Chart>& charts, int width, int height) {
  const std::string svg = render_svg(layout(charts, width, height));
  io::write_file_atomic(path, [&](std::FILE* f) {
    if (std::fwrite(svg.data(), 1, svg.size(), f) != svg.size())
      throw std::runtime_error("write_svg: cannot write '" + path + "'");
  });
}

void write_png(const std::string& path, const std::vector<Chart>& charts, int width, int height) {
  const std::vector<uint8_t> rgb = render_raster(layout(charts, width, height)).rgb8();
  io::write_file_atomic(path, [&](std::FILE* f) {
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    img.width = png_uint_32(width);
    img.height = png_uint_32(height);
    img.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_stdio(&img, f, 0, rgb.data(), width * 3, nullptr)) {
      const std::string msg = img.message;
      png_image_free(&img);
      throw std::runtime_error("write_png: cannot write '" + path + "': " + msg);
    }
  });
}

std::vector<Chart> run_charts(const std::vector<std::string>& run_dirs) {
  if (run_dirs.empty()) throw std::invalid_argument("plot_runs: no run folders given");
  std::vector<RunData> runs;
  const std::vector<std::string> names = run_names(run_dirs);
  for (size_t i = 0; i < run_dirs.size(); ++i) {
    runs.push_back(read_run(run_dirs[i]));
    runs.back().name = names[i];
  }

  // Chart 1: loss.
  Chart loss{"Loss", "step", "loss", {}, false};
  bool all_val = true;
  for (size_t r = 0; r < runs.size(); ++r) {
    const RunData& run = runs[r];
    const int color = int(r);
    const size_t n = run.train.v.size();
    if (n >= 10) {
      const double span = std::clamp(double(n) / 25.0, 2.0, 200.0);
      const double w = 1.0 - 2.0 / (span + 1.0);
      Series raw{"", run.train.xs(), run.train.ys(), false, false, true, color};
      Series smooth{run.name + " train (EMA)", run.train.xs(), ema_smooth(run.train.ys(), w), false, false, false, color};
      loss.series.push_back(std::move(raw));
      loss.series.push_back(std::move(smooth));
    } else if (n > 0) {
      loss.series.push_back({run.name + " train", run.train.xs(), run.train.ys(), false, false, false, color});
    }
    for (const std::string& split : run.splits) {
      if (split != "val") all_val = false;
      auto it = run.eval_loss.find(split);
      if (it == run.eval_loss.end() || it->second.v.empty()) continue;
      loss.series.push_back({run.name + " " + split, it->second.xs(), it->second.ys(), true, true, false, color});
    }
  }
  {
    std::vector<const Series*> ss;  // raw train loss is left out: one spike should not pick the scale
    for (auto& s : loss.series)
      if (!s.faint) ss.push_back(&s);
    loss.log_y = spans(ss, 30.0);
  }
  std::vector<Chart> charts{std::move(loss)};

  // The other eval metrics: those within [0, 1] together, each other one on its own.
  std::vector<std::string> metrics;
  for (auto& run : runs)
    for (auto& m : run.metrics)
      if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
  auto bounded = [&](const std::string& m) {
    for (auto& run : runs)
      for (auto& [split, ms] : run.eval_metrics)
        if (auto it = ms.find(m); it != ms.end())
          for (auto& [x, y] : it->second.v)
            if (std::isfinite(y) && (y < 0 || y > 1)) return false;
    return true;
  };
  const std::string eval_word = all_val ? "Validation" : "Evaluation";
  std::vector<std::string> unit, other;
  for (auto& m : metrics) (bounded(m) ? unit : other).push_back(m);
  auto add_series = [&](Chart& c, const std::vector<std::string>& ms) {
    for (size_t r = 0; r < runs.size(); ++r)
      for (const std::string& split : runs[r].splits) {
        auto sit = runs[r].eval_metrics.find(split);
        if (sit == runs[r].eval_metrics.end()) continue;
        for (size_t k = 0; k < ms.size(); ++k) {
          auto it = sit->second.find(ms[k]);
          if (it == sit->second.end() || it->second.v.empty()) continue;
          std::string label = runs[r].name + (split == "val" ? "" : " " + split);
          if (ms.size() > 1 || runs.size() == 1) label += " " + ms[k];
          // One run: a colour per metric. Several: a colour per run, and a dash for every second metric.
          const int color = runs.size() == 1 ? int(k) : int(r);
          const bool dashed = runs.size() > 1 && k % 2 == 1;
          c.series.push_back({label, it->second.xs(), it->second.ys(), dashed, true, false, color});
        }
      }
  };
  if (!unit.empty()) {
    Chart c{unit.size() == 1 ? eval_word + " " + unit[0] : eval_word + " metrics", "step",
            unit.size() == 1 ? unit[0] : "score", {}, false};
    add_series(c, unit);
    charts.push_back(std::move(c));
  }
  for (auto& m : other) {
    Chart c{eval_word + " " + m, "step", m, {}, false};
    add_series(c, {m});
    std::vector<const Series*> ss;
    for (auto& s : c.series) ss.push_back(&s);
    c.log_y = spans(ss, 5.0);
    charts.push_back(std::move(c));
  }
  double lo = INFINITY, hi = -INFINITY;
  for (const Chart& c : charts)
    for (const Series& s : c.series)
      for (double x : s.x)
        if (std::isfinite(x)) {
          lo = std::min(lo, x);
          hi = std::max(hi, x);
        }
  if (lo <= hi)
    for (Chart& c : charts) {
      c.x_min = lo;
      c.x_max = hi;
    }
  return charts;
}

void plot_runs(const std::vector<std::string>& run_dirs, const std::string& out_stem) {
  const std::vector<Chart> charts = run_charts(run_dirs);
  const int width = std::max(800, 600 * int(charts.size()));
  ensure_parent(out_stem + ".svg");
  write_svg(out_stem + ".svg", charts, width, 450);
  write_png(out_stem + ".png", charts, width, 450);
}

}  // namespace hone
