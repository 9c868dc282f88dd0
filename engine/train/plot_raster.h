// A small anti-aliased RGB raster for plot.cpp's PNG output: filled rectangles (with fractional
// edge coverage, so pixel-aligned ones are crisp), polylines of any width (round joins and caps,
// optionally dashed), discs, and text in the embedded fonts of bitmap_font.h, horizontal or
// rotated to read upwards. Everything can be clipped to a rectangle.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/train/bitmap_font.h"

namespace hone {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct PlotPoint {
  double x = 0, y = 0;
};

enum class TextAnchor { kStart, kMiddle, kEnd };

class Canvas {
 public:
  Canvas(int width, int height, Rgb background);

  int width() const { return w_; }
  int height() const { return h_; }

  // Drawing is limited to [x0, x1) x [y0, y1) (pixel coordinates) until reset_clip().
  void set_clip(double x0, double y0, double x1, double y1);
  void reset_clip();

  void fill_rect(double x0, double y0, double x1, double y1, Rgb c, double alpha = 1.0);
  // dash: on/off lengths in pixels, empty for a solid line.
  void stroke_polyline(const std::vector<PlotPoint>& pts, double width, Rgb c, double alpha = 1.0,
                       const std::vector<double>& dash = {});
  void fill_disc(double cx, double cy, double r, Rgb c, double alpha = 1.0);
  // (x, y) is on the baseline; the anchor picks which end of the text (or its middle) is there.
  // vertical: rotated by -90 degrees (reads bottom to top), like SVG's rotate(-90 x y).
  void draw_text(double x, double y, std::string_view text, const FontFace& font, Rgb c,
                 TextAnchor anchor = TextAnchor::kStart, bool vertical = false);

  // 8-bit RGB, row-major, width * height * 3 bytes.
  std::vector<uint8_t> rgb8() const;

 private:
  void blend(int x, int y, Rgb c, float a);
  void mask_segment(PlotPoint a, PlotPoint b, double half_width);
  void flush_mask(Rgb c, double alpha);

  int w_, h_;
  std::vector<float> px_;    // RGB, 0..255
  std::vector<float> mask_;  // coverage of the polyline being drawn
  int mx0_, my0_, mx1_, my1_;  // bounding box of mask_'s non-zero pixels
  int cx0_, cy0_, cx1_, cy1_;  // clip, integer pixels
};

}  // namespace hone
