// Keys that transformers writes into every model's config.json (PretrainedConfig's generation,
// export and bookkeeping settings): a text encoder config accepts them without reading them, and
// reports any other key it does not know.
#pragma once
#include <set>
#include <string>

namespace genvis::models {

const std::set<std::string>& transformers_common_config_keys();

// transformers_common_config_keys() plus `own` (the model class's arguments).
std::set<std::string> with_transformers_common_keys(std::set<std::string> own);

}  // namespace genvis::models
