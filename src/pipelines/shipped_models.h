// Where the models shipped with genvis are found: the built-in default model that generation uses
// when no model is named (genvis-emoji-32, trained by this repository's own recipe) and the eval
// judges. Used by the CLI and the public API alike.
#pragma once
#include <string>
#include <vector>

namespace genvis::pipelines {

inline constexpr const char* kDefaultModelName = "genvis-emoji-32";
// The default video model: what generation uses when more than one frame is asked for and no
// model is named (trained by `genvis train video`, configs/video-shapes.json).
inline constexpr const char* kDefaultVideoModelName = "genvis-shapes-video";

// Folders searched: only $GENVIS_DEFAULT_MODEL when it is set; otherwise the places of
// shipped_model_candidates(kDefaultModelName).
std::vector<std::string> default_model_candidates();

// models/<name> beside the executable, one level up (build/genvis -> models/), in
// ../share/genvis/models from the executable and from the genvis library itself (an installed
// tree), and in the source tree the library was built from.
std::vector<std::string> shipped_model_candidates(const std::string& name);
// The first of those holding `marker` (e.g. "config.json"); "" when none does.
std::string find_shipped_model(const std::string& name, const std::string& marker);

// The first candidate holding a model_index.json; UsageError listing every place looked in.
std::string find_default_model();
// The same for the default video model ($GENVIS_DEFAULT_VIDEO_MODEL, else the shipped places).
std::vector<std::string> default_video_model_candidates();
std::string find_default_video_model();

}  // namespace genvis::pipelines
