// Measured quality of generated clips of the shapes-video dataset, from the pixels alone: does
// the clip show the caption's object in every frame, and does it move as the caption says?
//
//   const data::VideoSample truth = clips->get(i);                    // caption + meta
//   eval::ShapesClipScore s = eval::score_shapes_clip(generated_frames, truth.meta);
//   s.motion;          // e.g. "moving to the left": the object's centre went left by >= 0.15 of the side
//   nlohmann::ordered_json m = eval::shapes_video_metrics(videos /*[N,3,T,H,W] in [0,1]*/, metas);
//
// Per frame, the image scorer (data::score_shapes) against the clip's scene of that frame (its
// templates turned by the frame's rotation): the object found with the caption's colour and shape. The motion, by its type:
//   move     the fitted centre of the last frame against the first: at least 0.15 of the side
//            along the caption's direction (the data moves 0.4) and more along it than across.
//   rotate   the rotation of the object's silhouette from the first frame to the last, tracked
//            frame by frame (tracked_rotation) at least 20 degrees in the caption's sense (the
//            data turns 72); counterclockwise positive as seen on screen.
//   colour   the first frame's object has the "from" colour and the last frame's the "to" colour.
//   grow / shrink  the fitted radius of the last frame over the first's above 1.15 (below 1/1.15).
// The object must be found (any colour) in the first and last frames for any motion to count.
#pragma once
#include "io/image.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace genvis::models {
class VideoClassifier;
}

namespace genvis::eval {

struct ShapesClipScore {
  std::string motion_type;  // move, rotate, colour, grow, shrink
  bool heldout = false;     // a held-out shape x motion pair
  double colour_shape = 0;  // fraction of frames with the object's colour and shape
  bool first_colour_shape = false;
  bool motion = false;
  // What was measured for the motion: the displacement (dx, dy in sides, y down), the rotation in
  // degrees, or the radius ratio.
  double dx = 0, dy = 0, degrees = 0, radius_ratio = 0;
  nlohmann::json to_json() const;
};

// frames: the clip's frames (any size; scored against meta's resolution); meta: a shapes-video
// clip's meta (its "motion" and "frames"). UsageError for a frame count other than the meta's or
// a meta without them.
ShapesClipScore score_shapes_clip(const std::vector<io::Image>& frames, const nlohmann::json& meta);

// The silhouette rotation from frame a to frame b in degrees (counterclockwise positive on screen):
// the angle in [-max_degrees, max_degrees] (1 degree apart) whose rotation of a's object about its
// centroid best overlaps b's object. The object is every pixel farther than a quarter of the
// range from the border's median colour. 0 when either frame shows no object.
double silhouette_rotation(const io::Image& a, const io::Image& b, int max_degrees = 40);
// The first frame's silhouette rotated onto each later frame, each frame searched within
// max_step degrees of the previous frame's angle (so a turn past the shape's symmetry keeps
// counting instead of snapping back): the last frame's angle in degrees.
double tracked_rotation(const std::vector<io::Image>& frames, int max_step = 30);

// Every clip of `videos` [N,3,T,H,W] in [0,1] against its meta:
//   shapes_video_motion_accuracy, shapes_video_motion_accuracy_<type> (per motion type present),
//   shapes_video_colour_shape_accuracy (mean over clips of the frame fraction),
//   shapes_video_first_frame_colour_shape_accuracy, clips.
nlohmann::ordered_json shapes_video_metrics(const at::Tensor& videos, const std::vector<nlohmann::json>& metas);

// Non-square clips against the square scene they were cut from. The video loader renders a
// bucket of height x width at side = max(height, width) and keeps the centred height x width
// window (top = (side - height) / 2, left = (side - width) / 2); these two undo and redo that so
// the pixel scorer and the video encoder, which work on the square scene, can score such clips:
//   centre_crop(videos [N,3,T,S,S], h, w)  -> [N,3,T,h,w], the loader's window
//   pad_to_square(videos [N,3,T,h,w])     -> [N,3,T,S,S], S = max(h, w), the clip in that window
//                                            and every other pixel the median of the frame's border
//                                            (the background, per channel)
// UsageError for a window larger than the clip or a tensor that is not [N,3,T,H,W].
at::Tensor centre_crop(const at::Tensor& videos, int64_t height, int64_t width);
at::Tensor pad_to_square(const at::Tensor& videos);

// Temporal change: the mean absolute difference between consecutive frames ([N,3,T,H,W] in
// [0,1]), over every pixel, pair and clip. Compared between generated and real clips it says
// whether a model's clips flicker (higher) or stand still (lower).
double mean_frame_change(const at::Tensor& videos);

// What a trained video encoder (models/video_classifier) says about `videos` [N,3,T,H,W] in [0,1]:
//   FVD[<name>]                  Fréchet distance between the Gaussians of the clips' features and
//                                the reference clips' (reference_features: the encoder's features of
//                                real clips, [M,feature_dim]; an FVD analogue in our own feature space;
//                                never comparable with published FVD, which uses I3D features)
//   <head>_accuracy[<name>]      per head, the fraction of clips the encoder labels as their meta
//                                says (clips whose meta has no known label for the head are skipped)
// `name` labels the metrics (the encoder folder's name).
nlohmann::ordered_json video_encoder_metrics(models::VideoClassifier& encoder, const std::string& name,
                                             const at::Tensor& videos, const std::vector<nlohmann::json>& metas,
                                             const at::Tensor& reference_features);

// [N,3,T,H,W] in [0,1] -> clip i's frames as 8-bit images.
std::vector<io::Image> clip_frames(const at::Tensor& videos, int64_t i);

}  // namespace genvis::eval
