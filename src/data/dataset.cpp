#include "data/dataset.h"

#include "core/error.h"

namespace genvis::data {

Split parse_split(const std::string& name) {
  if (name == "train") return Split::Train;
  if (name == "heldout" || name == "held-out") return Split::HeldOut;
  if (name == "all") return Split::All;
  throw UsageError("unknown split '" + name + "' (expected train, heldout or all)");
}

const char* split_name(Split split) {
  switch (split) {
    case Split::Train: return "train";
    case Split::HeldOut: return "heldout";
    case Split::All: return "all";
  }
  return "?";
}

}  // namespace genvis::data
