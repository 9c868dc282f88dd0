#include "engine/train/plot_raster.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace hone {

Canvas::Canvas(int width, int height, Rgb bg) : w_(width), h_(height) {
  if (width <= 0 || height <= 0) throw std::invalid_argument("Canvas: empty size");
  px_.resize(size_t(w_) * h_ * 3);
  for (size_t i = 0; i < px_.size(); i += 3) {
    px_[i] = bg.r;
    px_[i + 1] = bg.g;
    px_[i + 2] = bg.b;
  }
  mask_.assign(size_t(w_) * h_, 0.0f);
  mx0_ = my0_ = 1 << 30;
  mx1_ = my1_ = -1;
  reset_clip();
}

void Canvas::set_clip(double x0, double y0, double x1, double y1) {
  cx0_ = std::clamp(int(std::floor(x0)), 0, w_);
  cy0_ = std::clamp(int(std::floor(y0)), 0, h_);
  cx1_ = std::clamp(int(std::ceil(x1)), 0, w_);
  cy1_ = std::clamp(int(std::ceil(y1)), 0, h_);
}

void Canvas::reset_clip() {
  cx0_ = cy0_ = 0;
  cx1_ = w_;
  cy1_ = h_;
}

void Canvas::blend(int x, int y, Rgb c, float a) {
  if (a <= 0.0f) return;
  if (a > 1.0f) a = 1.0f;
  float* p = &px_[(size_t(y) * w_ + x) * 3];
  p[0] += (c.r - p[0]) * a;
  p[1] += (c.g - p[1]) * a;
  p[2] += (c.b - p[2]) * a;
}

void Canvas::fill_rect(double x0, double y0, double x1, double y1, Rgb c, double alpha) {
  if (x1 < x0) std::swap(x0, x1);
  if (y1 < y0) std::swap(y0, y1);
  const int ix0 = std::max(cx0_, int(std::floor(x0))), ix1 = std::min(cx1_, int(std::ceil(x1)));
  const int iy0 = std::max(cy0_, int(std::floor(y0))), iy1 = std::min(cy1_, int(std::ceil(y1)));
  for (int y = iy0; y < iy1; ++y) {
    const double cy = std::min(y1, y + 1.0) - std::max(y0, double(y));
    for (int x = ix0; x < ix1; ++x) {
      const double cx = std::min(x1, x + 1.0) - std::max(x0, double(x));
      blend(x, y, c, float(alpha * cx * cy));
    }
  }
}

// Coverage of a capsule (the segment a-b thickened by half_width) at each pixel centre, merged into
// mask_ by max so that overlapping segments of one polyline do not darken their joins.
void Canvas::mask_segment(PlotPoint a, PlotPoint b, double hw) {
  const double reach = hw + 1.0;
  const int x0 = std::max(cx0_, int(std::floor(std::min(a.x, b.x) - reach)));
  const int x1 = std::min(cx1_, int(std::ceil(std::max(a.x, b.x) + reach)));
  const int y0 = std::max(cy0_, int(std::floor(std::min(a.y, b.y) - reach)));
  const int y1 = std::min(cy1_, int(std::ceil(std::max(a.y, b.y) + reach)));
  if (x0 >= x1 || y0 >= y1) return;
  const double dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
  for (int y = y0; y < y1; ++y) {
    const double py = y + 0.5;
    for (int x = x0; x < x1; ++x) {
      const double px = x + 0.5;
      double t = len2 > 0 ? ((px - a.x) * dx + (py - a.y) * dy) / len2 : 0.0;
      t = std::clamp(t, 0.0, 1.0);
      const double ex = a.x + t * dx - px, ey = a.y + t * dy - py;
      const double d = std::sqrt(ex * ex + ey * ey);
      const float cov = float(std::clamp(hw + 0.5 - d, 0.0, 1.0));
      if (cov <= 0.0f) continue;
      float& m = mask_[size_t(y) * w_ + x];
      if (cov > m) m = cov;
    }
  }
  mx0_ = std::min(mx0_, x0);
  my0_ = std::min(my0_, y0);
  mx1_ = std::max(mx1_, x1);
  my1_ = std::max(my1_, y1);
}

void Canvas::flush_mask(Rgb c, double alpha) {
  for (int y = my0_; y < my1_; ++y)
    for (int x = mx0_; x < mx1_; ++x) {
      float& m = mask_[size_t(y) * w_ + x];
      if (m > 0.0f) {
        blend(x, y, c, float(m * alpha));
        m = 0.0f;
      }
    }
  mx0_ = my0_ = 1 << 30;
  mx1_ = my1_ = -1;
}

void Canvas::stroke_polyline(const std::vector<PlotPoint>& pts, double width, Rgb c, double alpha,
                             const std::vector<double>& dash) {
  if (pts.empty()) return;
  // Lines thinner than a pixel are drawn a pixel wide and proportionally lighter.
  if (width < 1.0) {
    alpha *= width;
    width = 1.0;
  }
  const double hw = width / 2;
  if (pts.size() == 1) {
    mask_segment(pts[0], pts[0], hw);
  } else if (dash.empty()) {
    for (size_t i = 1; i < pts.size(); ++i) mask_segment(pts[i - 1], pts[i], hw);
  } else {
    // Walk the polyline, carrying the dash phase across vertices.
    size_t k = 0;
    double left = dash[0];  // length left in the current dash entry
    for (size_t i = 1; i < pts.size(); ++i) {
      PlotPoint a = pts[i - 1];
      const PlotPoint b = pts[i];
      double seg = std::hypot(b.x - a.x, b.y - a.y);
      while (seg > 0) {
        const double step = std::min(seg, left);
        const double f = step / seg;
        const PlotPoint m{a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f};
        if (k % 2 == 0) mask_segment(a, m, hw);
        a = m;
        seg -= step;
        left -= step;
        if (left <= 1e-9) {
          k = (k + 1) % dash.size();
          left = dash[k];
        }
      }
    }
  }
  flush_mask(c, alpha);
}

void Canvas::fill_disc(double cx, double cy, double r, Rgb c, double alpha) {
  const int x0 = std::max(cx0_, int(std::floor(cx - r - 1))), x1 = std::min(cx1_, int(std::ceil(cx + r + 1)));
  const int y0 = std::max(cy0_, int(std::floor(cy - r - 1))), y1 = std::min(cy1_, int(std::ceil(cy + r + 1)));
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      blend(x, y, c, float(alpha * std::clamp(r + 0.5 - d, 0.0, 1.0)));
    }
}

void Canvas::draw_text(double x, double y, std::string_view text, const FontFace& font, Rgb c,
                       TextAnchor anchor, bool vertical) {
  const int tw = font.text_width(text);
  int pen = anchor == TextAnchor::kStart ? 0 : anchor == TextAnchor::kMiddle ? -tw / 2 : -tw;
  const int ox = int(std::lround(x)), oy = int(std::lround(y));
  for (char ch : text) {
    const FontGlyph& g = font.glyph(ch);
    const unsigned char* bits = font.bits + g.offset;
    for (int r = 0; r < g.height; ++r)
      for (int col = 0; col < g.width; ++col) {
        const unsigned char a = bits[r * g.width + col];
        if (!a) continue;
        const int u = pen + g.left + col;  // along the baseline
        const int v = r - g.top;           // downwards from the baseline
        const int px = vertical ? ox + v : ox + u;
        const int py = vertical ? oy - u - 1 : oy + v;
        if (px < cx0_ || px >= cx1_ || py < cy0_ || py >= cy1_) continue;
        blend(px, py, c, a / 255.0f);
      }
    pen += g.advance;
  }
}

std::vector<uint8_t> Canvas::rgb8() const {
  std::vector<uint8_t> out(px_.size());
  for (size_t i = 0; i < px_.size(); ++i) out[i] = uint8_t(std::clamp(std::lround(px_[i]), 0L, 255L));
  return out;
}

}  // namespace hone
