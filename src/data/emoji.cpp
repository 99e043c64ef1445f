#include "data/emoji.h"

#include "io/utf8.h"

#include "core/error.h"
#include "core/text.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include <hb-ft.h>
#include <hb.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

namespace genvis::data {
namespace {

const char* const kTestFilePackage = "unicode-data";
const char* const kFontPackage = "fonts-noto-color-emoji";

// Held-out rule (emoji.h): subgroups whose skin-tone variants are partly held out.
const std::array<const char*, 2> kHeldOutSubgroups = {"person-role", "person-activity"};

// flip_allowed rule (emoji.h).
const std::array<const char*, 9> kNoFlipSubgroups = {
    "arrow", "av-symbol", "keycap", "alphanum", "flag", "country-flag", "subdivision-flag", "time",
    "place-map"};
const std::array<const char*, 16> kNoFlipWords = {
    "arrow", "flag", "keycap", "left", "right", "Japanese", "letter", "check", "hundred", "ZZZ",
    "ATM", "copyright", "registered", "trade mark", "dollar", "stop sign"};

// "kiss: woman, man, light skin tone, dark skin tone" -> base "kiss: woman, man",
// tones "light skin tone, dark skin tone". Names without skin tones are their own base.
void split_skin_tone(const std::string& name, std::string& base, std::string& tones) {
  base = name;
  tones.clear();
  size_t colon = name.find(": ");
  if (colon == std::string::npos) return;
  std::vector<std::string> kept, found;
  std::stringstream rest(name.substr(colon + 2));
  for (std::string part; std::getline(rest, part, ',');) {
    part = trim(part);
    (ends_with(part, "skin tone") ? found : kept).push_back(part);
  }
  if (found.empty()) return;
  base = name.substr(0, colon);
  for (size_t i = 0; i < kept.size(); ++i) base += (i == 0 ? ": " : ", ") + kept[i];
  for (size_t i = 0; i < found.size(); ++i) tones += (i == 0 ? "" : ", ") + found[i];
}

// Marks the held-out entries (rule in emoji.h). Needs the whole list: bases are numbered by
// the order in which they first appear.
void mark_held_out(std::vector<EmojiEntry>& entries) {
  std::map<std::string, std::vector<size_t>> tones_of;  // base -> entries with one skin tone
  std::vector<std::string> bases;                       // file order
  for (size_t i = 0; i < entries.size(); ++i) {
    const EmojiEntry& e = entries[i];
    if (std::find(kHeldOutSubgroups.begin(), kHeldOutSubgroups.end(), e.subgroup) ==
        kHeldOutSubgroups.end())
      continue;
    if (std::find(kSkinTones.begin(), kSkinTones.end(), e.skin_tone) == kSkinTones.end()) continue;
    auto [it, inserted] = tones_of.try_emplace(e.base_name);
    if (inserted) bases.push_back(e.base_name);
    it->second.push_back(i);
  }
  size_t k = 0;
  for (const std::string& base : bases) {
    const std::vector<size_t>& variants = tones_of[base];
    if (variants.size() != kSkinTones.size()) continue;
    const char* tone = kSkinTones[k++ % kSkinTones.size()];
    for (size_t i : variants)
      if (entries[i].skin_tone == tone) entries[i].held_out = true;
  }
}

void require_file(const std::string& path, const char* what, const char* package) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw LoadError(path, std::string(what) + " not found: install the Debian package " + package);
}

// Colour transfer: sRGB 8-bit <-> linear float. Encoding is exact rounding: `midpoint[i]` is
// the linear value halfway (in sRGB) between codes i and i + 1, so the code is the number of
// midpoints below v.
struct SrgbTables {
  std::array<float, 256> to_linear;
  std::array<float, 255> midpoint;
  static double decode(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
  SrgbTables() {
    for (int i = 0; i < 256; ++i) to_linear[i] = static_cast<float>(decode(i / 255.0));
    for (int i = 0; i < 255; ++i) midpoint[i] = static_cast<float>(decode((i + 0.5) / 255.0));
  }
};
const SrgbTables& srgb() {
  static const SrgbTables tables;
  return tables;
}
uint16_t linear_to_srgb8(float v) {
  const auto& m = srgb().midpoint;
  return static_cast<uint16_t>(std::upper_bound(m.begin(), m.end(), v) - m.begin());
}

// Exact area weights for resampling n_in samples to n_out (box filter of width n_in / n_out):
// output o covers [o * s, (o + 1) * s) of the input; each input sample contributes its overlap.
struct AreaWeights {
  std::vector<int> first;                 // first input index of output o
  std::vector<std::vector<float>> weight; // normalised overlaps
};
AreaWeights area_weights(int n_in, int n_out) {
  AreaWeights w;
  double s = static_cast<double>(n_in) / n_out;
  for (int o = 0; o < n_out; ++o) {
    double a = o * s, b = (o + 1) * s;
    int i0 = static_cast<int>(std::floor(a)), i1 = std::min(n_in, static_cast<int>(std::ceil(b)));
    std::vector<float> ws;
    for (int i = i0; i < i1; ++i)
      ws.push_back(static_cast<float>((std::min<double>(b, i + 1) - std::max<double>(a, i)) / s));
    w.first.push_back(i0);
    w.weight.push_back(std::move(ws));
  }
  return w;
}

}  // namespace

std::vector<EmojiEntry> parse_emoji_test(const std::string& path) {
  require_file(path, "emoji-test.txt", kTestFilePackage);
  std::ifstream in(path);
  if (!in) throw LoadError(path, "cannot open emoji-test.txt");
  std::vector<EmojiEntry> entries;
  std::string group, subgroup, line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    auto bad = [&](const std::string& why) {
      return LoadError(path, "line " + std::to_string(line_no) + ": " + why);
    };
    if (line.rfind("# group:", 0) == 0) {
      group = trim(line.substr(8));
      continue;
    }
    if (line.rfind("# subgroup:", 0) == 0) {
      subgroup = trim(line.substr(11));
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    // "1F9D1 200D 1F692   ; fully-qualified     # 🧑‍🚒 E12.1 firefighter"
    size_t semi = line.find(';'), hash = line.find('#');
    if (semi == std::string::npos || hash == std::string::npos || hash < semi)
      throw bad("expected 'code points ; status # emoji version name'");
    if (trim(line.substr(semi + 1, hash - semi - 1)) != "fully-qualified") continue;
    EmojiEntry e;
    e.group = group;
    e.subgroup = subgroup;
    std::stringstream cps(line.substr(0, semi));
    for (std::string hex; cps >> hex;) {
      size_t used = 0;
      unsigned long cp = 0;
      try {
        cp = std::stoul(hex, &used, 16);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != hex.size() || cp > 0x10FFFF) throw bad("bad code point '" + hex + "'");
      e.codepoints.push_back(static_cast<char32_t>(cp));
      io::utf8::append(e.emoji, static_cast<char32_t>(cp));
    }
    if (e.codepoints.empty()) throw bad("no code points");
    // The comment repeats the sequence, then the version, then the name.
    std::string comment = trim(line.substr(hash + 1));
    if (comment.rfind(e.emoji + " ", 0) != 0) throw bad("comment does not start with the emoji");
    std::string rest = comment.substr(e.emoji.size() + 1);
    size_t space = rest.find(' ');
    if (space == std::string::npos || rest[0] != 'E') throw bad("expected 'E<version> <name>'");
    e.version = rest.substr(0, space);
    e.name = trim(rest.substr(space + 1));
    if (e.name.empty()) throw bad("empty name");
    split_skin_tone(e.name, e.base_name, e.skin_tone);
    entries.push_back(std::move(e));
  }
  if (entries.empty()) throw LoadError(path, "no fully-qualified emoji: not an emoji-test.txt");
  mark_held_out(entries);
  return entries;
}

// A FreeType face at the font's colour strike, and a HarfBuzz font over it. FreeType faces are
// not thread-safe: one thread at a time (EmojiDataset::Font lends them out). Not in an anonymous
// namespace, as EmojiDataset::Font (external linkage) holds them.
struct FontFace {
  FT_Library library = nullptr;
  FT_Face face = nullptr;
  hb_font_t* hb_font = nullptr;

  explicit FontFace(const std::string& path) {
    require_file(path, "Noto Color Emoji font", kFontPackage);
    if (FT_Init_FreeType(&library) != 0) throw RuntimeError("FreeType initialisation failed");
    if (FT_New_Face(library, path.c_str(), 0, &face) != 0) {
      FT_Done_FreeType(library);
      throw LoadError(path, "FreeType cannot open this font");
    }
    if (!FT_HAS_COLOR(face) || face->num_fixed_sizes < 1 || FT_Select_Size(face, 0) != 0) {
      FT_Done_Face(face);
      FT_Done_FreeType(library);
      throw LoadError(path, "not a colour bitmap emoji font (need fonts-noto-color-emoji's "
                            "NotoColorEmoji.ttf)");
    }
    hb_font = hb_ft_font_create(face, nullptr);
  }
  FontFace(const FontFace&) = delete;
  FontFace& operator=(const FontFace&) = delete;
  ~FontFace() {
    hb_font_destroy(hb_font);
    FT_Done_Face(face);
    FT_Done_FreeType(library);
  }

  // The glyph index if HarfBuzz shapes `codepoints` into exactly one real glyph, else 0.
  uint32_t shape(const std::vector<char32_t>& codepoints) {
    hb_buffer_t* buffer = hb_buffer_create();
    std::vector<uint32_t> text(codepoints.begin(), codepoints.end());
    hb_buffer_add_utf32(buffer, text.data(), static_cast<int>(text.size()), 0,
                        static_cast<int>(text.size()));
    hb_buffer_guess_segment_properties(buffer);
    hb_shape(hb_font, buffer, nullptr, 0);
    unsigned int count = 0;
    hb_glyph_info_t* info = hb_buffer_get_glyph_infos(buffer, &count);
    uint32_t glyph = count == 1 ? info[0].codepoint : 0;
    hb_buffer_destroy(buffer);
    return glyph;
  }

  // The glyph's colour bitmap, premultiplied BGRA as stored.
  struct Bitmap {
    int width = 0, height = 0;
    std::vector<uint8_t> bgra;
  };
  Bitmap load(uint32_t glyph, const std::string& what) {
    if (FT_Load_Glyph(face, glyph, FT_LOAD_COLOR) != 0)
      throw RuntimeError("FreeType cannot load the glyph of emoji '" + what + "'");
    FT_GlyphSlot slot = face->glyph;
    if (slot->format != FT_GLYPH_FORMAT_BITMAP && FT_Render_Glyph(slot, FT_RENDER_MODE_NORMAL) != 0)
      throw RuntimeError("FreeType cannot render emoji '" + what + "'");
    const FT_Bitmap& bm = slot->bitmap;
    if (bm.pixel_mode != FT_PIXEL_MODE_BGRA)
      throw RuntimeError("emoji '" + what + "' has no colour (BGRA) bitmap in this font");
    Bitmap out;
    out.width = static_cast<int>(bm.width);
    out.height = static_cast<int>(bm.rows);
    out.bgra.resize(static_cast<size_t>(out.width) * out.height * 4);
    for (int y = 0; y < out.height; ++y) {
      const uint8_t* row = bm.buffer + static_cast<ptrdiff_t>(y) * bm.pitch;
      std::copy(row, row + out.width * 4, out.bgra.begin() + static_cast<ptrdiff_t>(y) * out.width * 4);
    }
    return out;
  }
};

// A pool of faces so that get() runs in parallel (FreeType decodes the glyph PNGs): a thread
// borrows an idle face or opens a new one, and returns it when done.
struct EmojiDataset::Font {
  std::string path;
  std::mutex mutex;
  std::vector<std::unique_ptr<FontFace>> idle;

  explicit Font(std::string font_path) : path(std::move(font_path)) {
    idle.push_back(std::make_unique<FontFace>(path));  // fail now, not in get()
  }
  FontFace::Bitmap load(uint32_t glyph, const std::string& what) {
    std::unique_ptr<FontFace> face;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!idle.empty()) {
        face = std::move(idle.back());
        idle.pop_back();
      }
    }
    if (!face) face = std::make_unique<FontFace>(path);
    FontFace::Bitmap bitmap = face->load(glyph, what);  // on throw the face is dropped
    std::lock_guard<std::mutex> lock(mutex);
    idle.push_back(std::move(face));
    return bitmap;
  }
};

std::shared_ptr<const EmojiCatalogue> load_emoji_catalogue(const std::string& test_file_path,
                                                           const std::string& font_path) {
  static std::mutex cache_mutex;
  static std::map<std::pair<std::string, std::string>, std::shared_ptr<const EmojiCatalogue>> cache;
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto key = std::make_pair(test_file_path, font_path);
  if (auto it = cache.find(key); it != cache.end()) return it->second;

  std::vector<EmojiEntry> parsed = parse_emoji_test(test_file_path);
  FontFace font(font_path);
  auto catalogue = std::make_shared<EmojiCatalogue>();
  catalogue->parsed = parsed.size();
  for (EmojiEntry& e : parsed) {
    uint32_t glyph = font.shape(e.codepoints);
    if (glyph == 0) {
      catalogue->excluded.push_back(std::move(e));
    } else {
      catalogue->glyphs.push_back(glyph);
      catalogue->entries.push_back(std::move(e));
    }
  }
  cache.emplace(key, catalogue);
  return catalogue;
}

EmojiDataset::EmojiDataset(EmojiOptions options) : options_(std::move(options)) {
  if (options_.resolution < 1 || options_.resolution > 4096)
    throw UsageError("emoji: resolution must be 1..4096, got " + std::to_string(options_.resolution));
  catalogue_ = load_emoji_catalogue(options_.test_file_path, options_.font_path);
  font_ = std::make_unique<Font>(options_.font_path);
  for (size_t i = 0; i < catalogue_->entries.size(); ++i) {
    bool held_out = catalogue_->entries[i].held_out;
    if (options_.split == Split::All || (options_.split == Split::HeldOut) == held_out)
      indices_.push_back(i);
  }
  if (options_.prerender) {
    prerendered_.resize(indices_.size());
    unsigned n = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
    std::vector<std::thread> workers;
    std::exception_ptr failure;
    std::mutex failure_mutex;
    for (unsigned t = 0; t < n; ++t) {
      workers.emplace_back([&, t] {
        try {
          for (size_t i = t; i < indices_.size(); i += n) prerendered_[i] = render(indices_[i]);
        } catch (...) {
          std::lock_guard<std::mutex> lock(failure_mutex);
          if (!failure) failure = std::current_exception();
        }
      });
    }
    for (std::thread& w : workers) w.join();
    if (failure) std::rethrow_exception(failure);
  }
}

EmojiDataset::~EmojiDataset() = default;

const EmojiEntry& EmojiDataset::entry(size_t index) const {
  if (index >= indices_.size())
    throw UsageError("emoji: index " + std::to_string(index) + " out of range (size " +
                     std::to_string(indices_.size()) + ")");
  return catalogue_->entries[indices_[index]];
}

Sample EmojiDataset::get(size_t index) const {
  const EmojiEntry& e = entry(index);
  Sample s;
  s.image = prerendered_.empty() ? render(indices_[index]) : prerendered_[index];
  s.caption = e.name;
  nlohmann::json cps = nlohmann::json::array();
  for (char32_t cp : e.codepoints) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%04X", static_cast<unsigned>(cp));
    cps.push_back(hex);
  }
  s.meta = {{"codepoints", cps},          {"emoji", e.emoji},
            {"name", e.name},             {"group", e.group},
            {"subgroup", e.subgroup},     {"base_name", e.base_name},
            {"skin_tone", e.skin_tone},   {"version", e.version},
            {"held_out", e.held_out},     {"glyph", catalogue_->glyphs[indices_[index]]}};
  return s;
}

bool EmojiDataset::flip_allowed_for(const std::string& name, const std::string& subgroup) {
  for (const char* g : kNoFlipSubgroups)
    if (subgroup == g) return false;
  for (const char* w : kNoFlipWords)
    if (name.find(w) != std::string::npos) return false;
  return std::none_of(name.begin(), name.end(),
                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

bool EmojiDataset::flip_allowed(const Sample& sample) const {
  auto text = [&](const char* key) {
    auto it = sample.meta.find(key);
    return it != sample.meta.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  return flip_allowed_for(sample.meta.is_object() ? text("name") : sample.caption, text("subgroup"));
}

// 1. glyph bitmap (premultiplied sRGB BGRA) -> 2. centred on a transparent square ->
// 3. premultiplied linear RGB composited over the background -> 4. area downscale -> 5. sRGB.
io::Image EmojiDataset::render(size_t catalogue_index) const {
  const EmojiEntry& e = catalogue_->entries[catalogue_index];
  FontFace::Bitmap bm = font_->load(catalogue_->glyphs[catalogue_index], e.name);
  const auto& lin = srgb().to_linear;
  std::array<float, 3> bg;
  for (int c = 0; c < 3; ++c) bg[c] = lin[options_.background[c]];

  // 2-3. Linear RGB canvas, side = max(width, height), background everywhere the glyph is not.
  const int side = std::max({bm.width, bm.height, 1});
  const int ox = (side - bm.width) / 2, oy = (side - bm.height) / 2;
  std::vector<float> canvas(static_cast<size_t>(side) * side * 3);
  for (size_t p = 0; p < canvas.size(); p += 3) std::copy(bg.begin(), bg.end(), canvas.begin() + p);
  for (int y = 0; y < bm.height; ++y) {
    for (int x = 0; x < bm.width; ++x) {
      const uint8_t* px = &bm.bgra[(static_cast<size_t>(y) * bm.width + x) * 4];
      const int a8 = px[3];
      if (a8 == 0) continue;
      const float a = a8 / 255.0f;
      float* out = &canvas[(static_cast<size_t>(y + oy) * side + (x + ox)) * 3];
      for (int c = 0; c < 3; ++c) {
        // Un-premultiply in sRGB (the stored form), linearise, premultiply, composite.
        int straight = std::min(255, (px[2 - c] * 255 + a8 / 2) / a8);
        out[c] = lin[straight] * a + bg[c] * (1.0f - a);
      }
    }
  }

  // 4. Separable exact box filter: rows first (side -> r), then columns.
  const int r = options_.resolution;
  const AreaWeights w = area_weights(side, r);
  std::vector<float> rows(static_cast<size_t>(side) * r * 3, 0.0f);  // side rows x r columns
  for (int y = 0; y < side; ++y)
    for (int o = 0; o < r; ++o)
      for (size_t k = 0; k < w.weight[o].size(); ++k) {
        const float* in = &canvas[(static_cast<size_t>(y) * side + w.first[o] + k) * 3];
        float* out = &rows[(static_cast<size_t>(y) * r + o) * 3];
        for (int c = 0; c < 3; ++c) out[c] += w.weight[o][k] * in[c];
      }
  io::Image image = io::Image::blank(r, r, 3);
  for (int o = 0; o < r; ++o)
    for (int x = 0; x < r; ++x) {
      float acc[3] = {0, 0, 0};
      for (size_t k = 0; k < w.weight[o].size(); ++k) {
        const float* in = &rows[(static_cast<size_t>(w.first[o] + k) * r + x) * 3];
        for (int c = 0; c < 3; ++c) acc[c] += w.weight[o][k] * in[c];
      }
      // 5.
      for (int c = 0; c < 3; ++c) image.at(x, o, c) = linear_to_srgb8(acc[c]);
    }
  return image;
}

}  // namespace genvis::data
