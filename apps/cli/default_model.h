// The built-in model that `genvis generate` uses when no --model is given: genvis-emoji-32,
// trained by this repository's own recipe (configs/ldm-emoji.json) and shipped in models/.
#pragma once
#include <string>
#include <vector>

namespace genvis::cli {

inline constexpr const char* kDefaultModelName = "genvis-emoji-32";

// Folders searched: only $GENVIS_DEFAULT_MODEL when it is set; otherwise, in order,
// models/<name> beside the executable, one level up (build/genvis -> models/), in
// ../share/genvis/models (installed), and in the source tree the binary was built from.
std::vector<std::string> default_model_candidates();

// models/<name> beside the executable, one level up, in ../share/genvis/models and in the
// source tree (the places above without the variable): other shipped models (eval judges).
std::vector<std::string> shipped_model_candidates(const std::string& name);
// The first of those holding `marker` (e.g. "config.json"); "" when none does.
std::string find_shipped_model(const std::string& name, const std::string& marker);

// The first candidate holding a model_index.json; UsageError listing every place looked in.
std::string find_default_model();

}  // namespace genvis::cli
