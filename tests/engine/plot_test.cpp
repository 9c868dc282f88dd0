// engine/train/plot: run folders' metrics.jsonl -> SVG + PNG figures. The PNG is checked through
// its header bytes and by decoding it with libpng (something coloured was drawn where expected).
#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/train/plot.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() / ("hone_plot_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// A classification-like run: noisy decreasing train loss, evals with accuracy and macro_f1.
std::string fake_classification_metrics(int steps, int eval_every) {
  std::string out;
  for (int s = 1; s <= steps; ++s) {
    const double loss = 1.2 * std::exp(-s / 60.0) + 0.15 + 0.08 * std::sin(s * 1.7);
    out += "{\"step\":" + std::to_string(s) + ",\"loss\":" + (s == 37 ? "null" : std::to_string(loss)) +
           ",\"lr\":0.0001,\"grad_norm\":1.5,\"step_seconds\":0.02}\n";
    if (s % eval_every == 0) {
      const double acc = 0.5 + 0.4 * (1 - std::exp(-s / 80.0));
      out += "{\"step\":" + std::to_string(s) + ",\"split\":\"val\",\"loss\":" +
             std::to_string(1.1 * std::exp(-s / 70.0) + 0.25) + ",\"accuracy\":" + std::to_string(acc) +
             ",\"macro_f1\":" + std::to_string(acc - 0.07) + "}\n";
    }
  }
  return out;
}

std::string fake_lm_metrics(int steps, double scale) {
  std::string out;
  for (int s = 1; s <= steps; ++s) {
    const double loss = scale * (6.0 * std::exp(-s / 40.0) + 2.5 + 0.1 * std::cos(s * 0.9));
    out += "{\"step\":" + std::to_string(s) + ",\"loss\":" + std::to_string(loss) + ",\"lr\":0.0003}\n";
    if (s % 25 == 0) {
      const double vl = scale * (6.0 * std::exp(-s / 45.0) + 2.7);
      out += "{\"step\":" + std::to_string(s) + ",\"split\":\"val\",\"loss\":" + std::to_string(vl) +
             ",\"ppl\":" + std::to_string(std::exp(vl)) + "}\n";
    }
  }
  return out;
}

struct PngHeader {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
};

uint32_t be32(const std::string& b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) |
         (uint32_t(uint8_t(b[at + 2])) << 8) | uint32_t(uint8_t(b[at + 3]));
}

PngHeader png_header(const fs::path& p) {
  const std::string b = slurp(p);
  EXPECT_GE(b.size(), 33u);
  if (b.size() < 33) return {};
  EXPECT_EQ(b.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(be32(b, 8), 13u);  // IHDR length
  EXPECT_EQ(b.substr(12, 4), "IHDR");
  return {be32(b, 16), be32(b, 20), uint8_t(b[24]), uint8_t(b[25])};
}

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
  const uint8_t* at(int x, int y) const { return &rgb[(size_t(y) * w + x) * 3]; }
};

Image decode_png(const fs::path& p) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  Image out;
  if (!png_image_begin_read_from_file(&img, p.c_str())) {
    ADD_FAILURE() << "cannot read " << p << ": " << img.message;
    return out;
  }
  img.format = PNG_FORMAT_RGB;
  out.w = int(img.width);
  out.h = int(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) ADD_FAILURE() << img.message;
  return out;
}

// Pixels close to a colour (anti-aliasing leaves some a little off).
int count_near(const Image& im, int r, int g, int b, int tol = 24) {
  int n = 0;
  for (int y = 0; y < im.h; ++y)
    for (int x = 0; x < im.w; ++x) {
      const uint8_t* p = im.at(x, y);
      if (std::abs(p[0] - r) <= tol && std::abs(p[1] - g) <= tol && std::abs(p[2] - b) <= tol) ++n;
    }
  return n;
}

int count_substr(const std::string& s, const std::string& needle) {
  int n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

void expect_well_formed_svg(const std::string& svg) {
  ASSERT_GE(svg.size(), 12u);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u) << "starts with: " << svg.substr(0, 40);
  std::string t = svg;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  EXPECT_TRUE(t.size() >= 6 && t.substr(t.size() - 6) == "</svg>") << "ends with: " << t.substr(t.size() - 20);
  EXPECT_EQ(count_substr(svg, "<svg"), 1);
  EXPECT_EQ(count_substr(svg, "<text"), count_substr(svg, "</text>"));
  EXPECT_EQ(count_substr(svg, "<clipPath"), count_substr(svg, "</clipPath>"));
  for (const char* bad : {"=\"nan", "=\"-nan", "=\"inf", "=\"-inf", ",nan", ",-nan", ",inf", ",-inf", "nan,", "inf,"})
    EXPECT_EQ(svg.find(bad), std::string::npos) << bad;
}

TEST(Plot, PlotRunsWritesSvgAndPng) {
  TempDir tmp;
  const fs::path run = tmp.path / "run-alpha";
  write_text(run / "metrics.jsonl", fake_classification_metrics(300, 50));
  const fs::path stem = tmp.path / "plots" / "alpha";  // the folder does not exist yet
  plot_runs({run.string()}, stem.string());

  const fs::path svg_path = stem.string() + ".svg", png_path = stem.string() + ".png";
  ASSERT_TRUE(fs::exists(svg_path));
  ASSERT_TRUE(fs::exists(png_path));
  // Atomic writes leave no temporary files behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(stem.parent_path())) {
    ++files;
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
  EXPECT_EQ(files, 2);

  const PngHeader h = png_header(png_path);
  EXPECT_EQ(h.width, 1200u);  // two charts: loss | accuracy + macro_f1
  EXPECT_EQ(h.height, 450u);
  EXPECT_EQ(h.bit_depth, 8);
  EXPECT_EQ(h.color_type, 2);  // RGB

  const std::string svg = slurp(svg_path);
  expect_well_formed_svg(svg);
  EXPECT_NE(svg.find("width=\"1200\""), std::string::npos);
  for (const char* label : {"run-alpha train (EMA)", "run-alpha val", "run-alpha accuracy", "run-alpha macro_f1",
                            ">Loss<", ">Validation metrics<", ">step<"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;

  // The PNG has the run's colour (Okabe-Ito blue) and the metric's (vermillion), and dark text.
  const Image im = decode_png(png_path);
  ASSERT_EQ(im.w, 1200);
  EXPECT_GT(count_near(im, 0x00, 0x72, 0xB2), 200);
  EXPECT_GT(count_near(im, 0xD5, 0x5E, 0x00), 50);
  EXPECT_GT(count_near(im, 0x33, 0x33, 0x33, 40), 100);
  // Left and right panels both drew something coloured.
  int left = 0, right = 0;
  for (int y = 0; y < im.h; ++y)
    for (int x = 0; x < im.w; ++x) {
      const uint8_t* p = im.at(x, y);
      if (std::abs(p[0] - 0x00) < 30 && std::abs(p[1] - 0x72) < 30 && std::abs(p[2] - 0xB2) < 30)
        ++(x < 600 ? left : right);
    }
  EXPECT_GT(left, 100);
  EXPECT_GT(right, 20);
}

TEST(Plot, SeveralRunsGetTheirOwnLegendEntriesAndPplChart) {
  TempDir tmp;
  write_text(tmp.path / "a" / "small-lr" / "metrics.jsonl", fake_lm_metrics(200, 1.0));
  write_text(tmp.path / "b" / "big-lr" / "metrics.jsonl", fake_lm_metrics(200, 0.8));
  write_text(tmp.path / "c" / "big-lr" / "metrics.jsonl", fake_lm_metrics(150, 0.9));  // same folder name
  const std::vector<std::string> runs = {(tmp.path / "a" / "small-lr").string(), (tmp.path / "b" / "big-lr").string(),
                                         (tmp.path / "c" / "big-lr/").string()};

  const std::vector<Chart> charts = run_charts(runs);
  ASSERT_EQ(charts.size(), 2u);
  EXPECT_EQ(charts[0].title, "Loss");
  EXPECT_EQ(charts[1].title, "Validation ppl");
  EXPECT_TRUE(charts[1].log_y);  // ppl spans far more than a factor of 10
  // Per run: raw (unlabelled, faint) + EMA + val, each run in its own colour.
  ASSERT_EQ(charts[0].series.size(), 9u);
  EXPECT_TRUE(charts[0].series[0].faint);
  EXPECT_TRUE(charts[0].series[0].label.empty());
  EXPECT_EQ(charts[0].series[1].label, "small-lr train (EMA)");
  EXPECT_EQ(charts[0].series[5].label, "b/big-lr val");
  EXPECT_EQ(charts[0].series[8].label, "c/big-lr val");
  EXPECT_TRUE(charts[0].series[8].markers);
  EXPECT_EQ(charts[0].series[2].color, 0);
  EXPECT_EQ(charts[0].series[5].color, 1);
  EXPECT_EQ(charts[0].series[8].color, 2);

  plot_runs(runs, (tmp.path / "cmp").string());
  const std::string svg = slurp(tmp.path / "cmp.svg");
  expect_well_formed_svg(svg);
  for (const char* label : {"small-lr train (EMA)", "b/big-lr val", "c/big-lr train (EMA)"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  const PngHeader h = png_header(tmp.path / "cmp.png");
  EXPECT_EQ(h.width, 1200u);
  EXPECT_EQ(h.height, 450u);
}

TEST(Plot, TrainOnlyRunIsOneChart) {
  TempDir tmp;
  write_text(tmp.path / "r" / "metrics.jsonl",
             "{\"step\":1,\"loss\":2.0}\n\n{\"step\":2,\"loss\":1.5}\n{\"step\":3,\"loss\":1.4}\n");
  const std::vector<Chart> charts = run_charts({(tmp.path / "r").string()});
  ASSERT_EQ(charts.size(), 1u);
  ASSERT_EQ(charts[0].series.size(), 1u);  // too few points to smooth: the raw line, labelled
  EXPECT_EQ(charts[0].series[0].label, "r train");
  plot_runs({(tmp.path / "r").string()}, (tmp.path / "one").string());
  EXPECT_EQ(png_header(tmp.path / "one.png").width, 800u);
}

TEST(Plot, ResumedRunKeepsTheLastValuePerStep) {
  TempDir tmp;
  write_text(tmp.path / "r" / "metrics.jsonl",
             "{\"step\":1,\"loss\":3.0}\n{\"step\":2,\"loss\":2.0}\n{\"step\":2,\"loss\":2.5}\n{\"step\":3,\"loss\":1.0}\n");
  const std::vector<Chart> charts = run_charts({(tmp.path / "r").string()});
  ASSERT_EQ(charts[0].series.size(), 1u);
  EXPECT_EQ(charts[0].series[0].x, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(charts[0].series[0].y, (std::vector<double>{3.0, 2.5, 1.0}));
}

TEST(Plot, MissingOrCorruptMetricsNameTheFileAndLine) {
  TempDir tmp;
  const fs::path missing = tmp.path / "no-such-run";
  try {
    plot_runs({missing.string()}, (tmp.path / "x").string());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((missing / "metrics.jsonl").string()), std::string::npos) << e.what();
  }

  const fs::path bad = tmp.path / "bad";
  write_text(bad / "metrics.jsonl", "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"loss\":1.9}\n{\"step\":3,\"lo\n");
  try {
    plot_runs({bad.string()}, (tmp.path / "x").string());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((bad / "metrics.jsonl").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(tmp.path / "x.svg"));
  EXPECT_FALSE(fs::exists(tmp.path / "x.png"));

  write_text(bad / "metrics.jsonl", "{\"step\":1,\"loss\":2.0}\n[1,2]\n");
  EXPECT_THROW(run_charts({bad.string()}), std::runtime_error);
  write_text(bad / "metrics.jsonl", "{\"loss\":2.0}\n");
  EXPECT_THROW(run_charts({bad.string()}), std::runtime_error);
}

TEST(Plot, EdgeCaseSeriesDraw) {
  TempDir tmp;
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  std::vector<double> many_x, many_y;
  for (int i = 0; i < 20000; ++i) {
    many_x.push_back(i);
    many_y.push_back(std::sin(i * 0.01) + 0.3 * std::sin(i * 1.3));
  }
  Chart single{"single point", "x", "y", {{"one", {5}, {2.5}}}, false};
  Chart constant{"constant", "x", "y", {{"flat", {0, 1, 2, 3}, {5, 5, 5, 5}}}, false};
  Chart holes{"gaps", "x", "y", {{"holes", {0, 1, 2, 3, 4, nan, 6}, {1, nan, 3, inf, 2, 1, -inf}, true, true}}, false};
  Chart many{"20000 points", "x", "y", {{"many", many_x, many_y}}, false};
  Chart logc{"log", "x", "y", {{"decades", {1, 2, 3, 4}, {1000, 10, -1, 0.01}}}, true};
  Chart empty{"empty", "", "", {{"nothing", {}, {}}}, false};
  const std::vector<Chart> charts = {single, constant, holes, many, logc, empty};
  const fs::path png = tmp.path / "edge.png", svg = tmp.path / "edge.svg";
  write_png(png.string(), charts, 1800, 400);
  write_svg(svg.string(), charts, 1800, 400);
  const PngHeader h = png_header(png);
  EXPECT_EQ(h.width, 1800u);
  EXPECT_EQ(h.height, 400u);
  const std::string s = slurp(svg);
  expect_well_formed_svg(s);
  EXPECT_NE(s.find("no data"), std::string::npos);
  EXPECT_LT(s.size(), 2u << 20);  // 20000 points are thinned per pixel column

  // The constant series is a horizontal line of the first palette colour across its panel.
  const Image im = decode_png(png);
  int best_row = 0;
  for (int y = 0; y < im.h; ++y) {
    int n = 0;
    for (int x = 300; x < 600; ++x) {
      const uint8_t* p = im.at(x, y);
      if (std::abs(p[0] - 0x00) < 20 && std::abs(p[1] - 0x72) < 20 && std::abs(p[2] - 0xB2) < 20) ++n;
    }
    best_row = std::max(best_row, n);
  }
  EXPECT_GT(best_row, 150);

  EXPECT_THROW(write_png((tmp.path / "z.png").string(), {}, 100, 100), std::invalid_argument);
  EXPECT_THROW(write_png((tmp.path / "z.png").string(), {single}, 50, 50), std::invalid_argument);
}

// y tick labels are the right-anchored texts.
std::vector<double> y_tick_values(const std::string& svg) {
  std::vector<double> v;
  const std::string mark = "text-anchor=\"end\">";
  for (size_t at = svg.find(mark); at != std::string::npos; at = svg.find(mark, at + 1)) {
    const size_t b = at + mark.size();
    v.push_back(std::stod(svg.substr(b, svg.find('<', b) - b)));
  }
  return v;
}

TEST(Plot, RawSpikeDoesNotSquashTheChart) {
  TempDir tmp;
  Series raw{"", {}, {}, false, false, true, 0};
  for (int i = 0; i < 1000; ++i) {
    raw.x.push_back(i);
    raw.y.push_back(1.0 + 0.1 * std::sin(i * 0.7) + (i == 500 ? 100.0 : 0.0));
  }
  Series smooth{"smooth", raw.x, ema_smooth(raw.y, 0.9), false, false, false, 0};
  for (double& y : smooth.y) y = std::min(y, 1.1);
  const fs::path svg = tmp.path / "spike.svg";
  write_svg(svg.string(), {Chart{"spike", "step", "loss", {raw, smooth}, false}});
  const std::vector<double> ticks = y_tick_values(slurp(svg));
  ASSERT_GE(ticks.size(), 3u);
  for (double t : ticks) {
    EXPECT_GT(t, 0.8);
    EXPECT_LT(t, 1.2);
  }
}

TEST(Plot, EmaSmooth) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> flat = ema_smooth({2, 2, 2, 2}, 0.9);
  for (double v : flat) EXPECT_NEAR(v, 2.0, 1e-12);  // bias-corrected: no pull towards 0
  EXPECT_EQ(ema_smooth({1, 3, 5}, 0.0), (std::vector<double>{1, 3, 5}));
  const std::vector<double> gap = ema_smooth({1, nan, 1}, 0.5);
  EXPECT_TRUE(std::isnan(gap[1]));
  EXPECT_NEAR(gap[2], 1.0, 1e-12);
  const std::vector<double> step = ema_smooth({0, 0, 0, 10, 10, 10}, 0.5);
  EXPECT_GT(step[3], 0.0);
  EXPECT_LT(step[3], 10.0);
  EXPECT_LT(step[3], step[5]);
}

}  // namespace
}  // namespace hone
