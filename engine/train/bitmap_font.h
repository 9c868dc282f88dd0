// Small embedded fonts for drawing text into raster images without a font library: printable
// ASCII (32..126) of DejaVu Sans at 12 and 14 px and DejaVu Sans Bold at 16 px, pre-rasterised
// into 8-bit coverage (anti-aliased) bitmaps in bitmap_font_data.inc. Characters outside that range
// draw as '?'. The pixel sizes equal CSS font sizes in px, so SVG text set in "DejaVu Sans" at the
// same size has the same advance widths as these glyphs.
#pragma once

#include <cstdint>
#include <string_view>

namespace hone {

struct FontGlyph {
  int16_t advance;  // pen advance in px
  int16_t left;     // bitmap's left edge relative to the pen
  int16_t top;      // bitmap's first row above the baseline
  uint16_t width, height;
  uint32_t offset;  // into FontFace::bits, row-major, width * height bytes
};

struct FontFace {
  int px;         // em size in pixels
  int ascender;   // px above the baseline (line metrics)
  int descender;  // px below the baseline
  const FontGlyph* glyphs;  // 95 entries, character 32 + i
  const unsigned char* bits;

  const FontGlyph& glyph(char c) const {
    const unsigned char u = static_cast<unsigned char>(c);
    return glyphs[(u >= 32 && u < 127) ? u - 32 : '?' - 32];
  }
  int text_width(std::string_view s) const {
    int w = 0;
    for (char c : s) w += glyph(c).advance;
    return w;
  }
  // Height of capital letters above the baseline (the top of 'H').
  int cap_height() const { return glyph('H').top; }
};

enum class FontId { kSmall, kMedium, kBold };
const FontFace& font_face(FontId id);

}  // namespace hone
