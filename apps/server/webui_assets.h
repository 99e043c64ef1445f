#pragma once
// The web UI, embedded at build time (webui_assets.cpp, generated from apps/server/webui/ by
// apps/server/CMakeLists.txt).
#include <cstddef>

namespace genvis::server {

struct WebAsset {
  const char* path;
  const char* mime;
  const char* content;
};
extern const WebAsset kWebAssets[];
extern const size_t kWebAssetCount;

}  // namespace genvis::server
