// Internal to the shapes dataset and its scorer: the shape templates (inside tests at unit
// radius, v up), their placement and anti-aliased coverage in pixels, and the named colours as
// RGB. One definition, so the scorer's rules are the renderer's rules.
#pragma once
#include "data/shapes.h"

#include <array>

namespace genvis::data::shapes_geometry {

constexpr double kExtent = 1.07;  // farthest point of any shape, in radii (square corner)
constexpr double kPositionTolerance = 0.15;  // of the side: a centre this close is "in place"

// Whether (u, v) lies inside `kind` drawn at unit radius (v pointing up).
bool inside_unit(ShapeKind kind, double u, double v);

// A placed shape in pixel units (y down).
struct Placed {
  ShapeKind kind;
  double cx, cy, r;
  double cos_t = 1, sin_t = 0;  // rotation, counter-clockwise
};

Placed place(const ShapeObject& o, int resolution);
// Fraction of pixel (px, py) covered (supersampled).
double coverage(const Placed& s, int px, int py);

struct PixelBox {
  int x0, y0, x1, y1;  // inclusive-exclusive
};

// The pixels a placed shape can touch, clipped to the image.
PixelBox box_of(const Placed& s, int width, int height);

using Rgb = std::array<double, 3>;
Rgb rgb_of(int colour);
// Index in kShapeColours of the colour closest to `rgb`.
int nearest_colour(const Rgb& rgb);

}  // namespace genvis::data::shapes_geometry
