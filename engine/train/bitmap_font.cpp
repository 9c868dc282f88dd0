#include "engine/train/bitmap_font.h"

namespace hone {
namespace {
#include "engine/train/bitmap_font_data.inc"
}  // namespace

const FontFace& font_face(FontId id) {
  switch (id) {
    case FontId::kSmall: return kFontSmall;
    case FontId::kMedium: return kFontMedium;
    case FontId::kBold: return kFontBold;
  }
  return kFontSmall;
}

}  // namespace hone
