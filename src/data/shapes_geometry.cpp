#include "data/shapes_geometry.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>
#include <vector>

namespace genvis::data::shapes_geometry {

// ---- geometry: inside tests in unit radius, v pointing up ---------------------------------------

namespace {

constexpr double kPi = std::numbers::pi;
constexpr int kSuper = 4;  // supersamples per pixel side

bool in_polygon(const std::vector<std::pair<double, double>>& poly, double x, double y) {
  bool in = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    auto [xi, yi] = poly[i];
    auto [xj, yj] = poly[j];
    if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) in = !in;
  }
  return in;
}

const std::vector<std::pair<double, double>>& star_polygon() {
  static const std::vector<std::pair<double, double>> poly = [] {
    std::vector<std::pair<double, double>> p;
    for (int i = 0; i < 10; ++i) {
      double a = kPi / 2 + i * kPi / 5;
      double r = i % 2 == 0 ? 1.0 : 0.45;
      p.emplace_back(r * std::cos(a), r * std::sin(a));
    }
    return p;
  }();
  return poly;
}

}  // namespace

bool inside_unit(ShapeKind kind, double u, double v) {
  switch (kind) {
    case ShapeKind::Circle:
      return u * u + v * v <= 0.81;
    case ShapeKind::Square:
      return std::max(std::abs(u), std::abs(v)) <= 0.75;
    case ShapeKind::Triangle: {  // equilateral, apex up, circumradius 1
      for (double deg : {30.0, 150.0, 270.0}) {
        double a = deg * kPi / 180;
        if (u * std::cos(a) + v * std::sin(a) > 0.5) return false;
      }
      return true;
    }
    case ShapeKind::Star:
      return u * u + v * v <= 1.0 && in_polygon(star_polygon(), u, v);
    case ShapeKind::Heart: {  // (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled into the unit circle
      double x = u * 1.2, y = v * 1.2 + 0.12;
      double q = x * x + y * y - 1;
      return q * q * q - x * x * y * y * y <= 0;
    }
    case ShapeKind::Ring: {
      double r2 = u * u + v * v;
      return r2 >= 0.55 * 0.55 && r2 <= 0.95 * 0.95;
    }
    case ShapeKind::Cross:
      return (std::abs(u) <= 0.3 && std::abs(v) <= 0.9) ||
             (std::abs(v) <= 0.3 && std::abs(u) <= 0.9);
    case ShapeKind::Diamond:
      return std::abs(u) / 0.75 + std::abs(v) <= 1.0;
    case ShapeKind::Hexagon: {  // pointy top, circumradius 0.95
      for (int i = 0; i < 6; ++i) {
        double a = i * kPi / 3;
        if (u * std::cos(a) + v * std::sin(a) > 0.95 * std::sqrt(3.0) / 2) return false;
      }
      return true;
    }
  }
  return false;
}

Placed place(const ShapeObject& o, int resolution) {
  double t = o.rotation * kPi / 180;
  return {o.shape,     o.cx * resolution, o.cy * resolution, o.radius * resolution,
          std::cos(t), std::sin(t)};
}

// Fraction of pixel (px, py) covered, by kSuper x kSuper point samples.
double coverage(const Placed& s, int px, int py) {
  int hits = 0;
  for (int j = 0; j < kSuper; ++j) {
    for (int i = 0; i < kSuper; ++i) {
      double u = (px + (i + 0.5) / kSuper - s.cx) / s.r;
      double v = -(py + (j + 0.5) / kSuper - s.cy) / s.r;
      double ur = u * s.cos_t + v * s.sin_t, vr = -u * s.sin_t + v * s.cos_t;
      hits += inside_unit(s.kind, ur, vr) ? 1 : 0;
    }
  }
  return static_cast<double>(hits) / (kSuper * kSuper);
}

PixelBox box_of(const Placed& s, int width, int height) {
  double b = kExtent * s.r + 1;
  return {std::max(0, static_cast<int>(std::floor(s.cx - b))),
          std::max(0, static_cast<int>(std::floor(s.cy - b))),
          std::min(width, static_cast<int>(std::ceil(s.cx + b)) + 1),
          std::min(height, static_cast<int>(std::ceil(s.cy + b)) + 1)};
}

Rgb rgb_of(int colour) {
  const auto& c = kShapeColours.at(static_cast<size_t>(colour)).rgb;
  return {double(c[0]), double(c[1]), double(c[2])};
}

int nearest_colour(const Rgb& rgb) {
  int best = 0;
  double best_d = 1e300;
  for (size_t i = 0; i < kShapeColours.size(); ++i) {
    double d = 0;
    for (int c = 0; c < 3; ++c) {
      double e = rgb[c] - kShapeColours[i].rgb[c];
      d += e * e;
    }
    if (d < best_d) best_d = d, best = static_cast<int>(i);
  }
  return best;
}

}  // namespace genvis::data::shapes_geometry
