#include "models/inspect.h"

#include "core/error.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/text.h"
#include "io/image.h"
#include "io/infotext.h"
#include "io/video.h"
#include "io/weights.h"
#include "models/detect.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace genvis::models {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

bool is_png(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char sig[8] = {};
  const size_t n = std::fread(sig, 1, 8, f);
  std::fclose(f);
  static const unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return n == 8 && std::equal(sig, sig + 8, kSig);
}

bool is_weight_file_name(const std::string& name) {
  for (const char* ext : {".safetensors", ".gguf", ".ckpt", ".pt", ".pth", ".bin", ".index.json"})
    if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::strlen(ext), ext) == 0)
      return true;
  return false;
}

ojson inspect_weights(const std::string& path, const InspectOptions& options) {
  auto reader = io::open_weights(path);
  const auto& tensors = reader->tensors();
  ojson j;
  j["path"] = path;
  j["kind"] = "weights";
  j["format"] = reader->format();
  j["tensor_count"] = tensors.size();
  j["parameter_count"] = reader->parameter_count();
  j["total_bytes"] = reader->total_bytes();
  std::map<std::string, size_t> dtypes;
  for (const auto& t : tensors) ++dtypes[t.storage.empty() ? io::dtype_name(t.dtype) : t.storage];
  j["dtypes"] = dtypes;

  const LayoutGuess g = detect_layout(tensors, reader->metadata(), reader->format());
  j["layout"] = g.layout;
  if (!g.class_name.empty()) j["class_name"] = g.class_name;
  if (!g.family.empty()) j["family"] = g.family;
  if (!g.pipeline.empty()) j["pipeline"] = g.pipeline;
  if (!g.details.empty()) j["details"] = g.details;
  if (!g.components.empty()) j["components"] = g.components;
  if (!reader->metadata().empty()) j["metadata"] = reader->metadata();
  if (options.hash) {
    const std::string sha = sha256_file_hex(path);
    j["sha256"] = sha;
    j["model_hash"] = sha.substr(0, 10);
  }
  if (options.list_tensors) {
    ojson list = ojson::array();
    for (const auto& t : tensors) {
      ojson row = {{"name", t.name}, {"dtype", io::dtype_name(t.dtype)}, {"shape", t.shape}};
      if (!t.storage.empty()) row["storage"] = t.storage;  // GGUF: the block type loads as dtype
      list.push_back(std::move(row));
    }
    j["tensors"] = std::move(list);
  }
  return j;
}

ojson parameters_json(const io::GenerationParameters& p) {
  ojson params;
  params["prompt"] = p.prompt;
  params["negative_prompt"] = p.negative_prompt;
  if (p.steps) params["steps"] = *p.steps;
  if (!p.sampler.empty()) params["sampler"] = p.sampler;
  if (!p.schedule.empty()) params["schedule"] = p.schedule;
  if (p.cfg_scale) params["cfg_scale"] = *p.cfg_scale;
  if (p.seed) params["seed"] = *p.seed;
  if (p.width) params["width"] = *p.width;
  if (p.height) params["height"] = *p.height;
  if (!p.model.empty()) params["model"] = p.model;
  if (!p.model_hash.empty()) params["model_hash"] = p.model_hash;
  for (const auto& [k, v] : p.extra) params[k] = v;
  return params;
}

ojson inspect_png(const std::string& path) {
  const io::Image image = io::read_png(path);
  ojson j;
  j["path"] = path;
  j["kind"] = "image";
  j["width"] = image.width;
  j["height"] = image.height;
  j["channels"] = image.channels;
  j["bit_depth"] = image.bit_depth;
  ojson text = ojson::object();
  for (const auto& [key, value] : io::read_png_text(path)) text[key] = value;
  j["text"] = text;
  if (text.contains("parameters"))
    j["parameters"] = parameters_json(io::parse_infotext(text["parameters"].get<std::string>()));
  return j;
}

// A video file or a folder of PNG frames (io/video.h).
ojson inspect_video(const std::string& path) {
  const io::VideoInfo v = io::probe_video(path);
  ojson j;
  j["path"] = path;
  j["kind"] = "video";
  j["format"] = v.format;
  j["codec"] = v.codec;
  j["width"] = v.width;
  j["height"] = v.height;
  j["frame_count"] = v.frame_count;
  j["fps"] = v.fps;
  if (v.fps > 0) j["duration_s"] = static_cast<double>(v.frame_count) / v.fps;
  ojson metadata = ojson::object();
  for (const auto& [key, value] : v.metadata) metadata[key] = value;
  j["metadata"] = metadata;
  if (v.parameters) {
    j["parameters_text"] = *v.parameters;
    j["parameters"] = parameters_json(io::parse_infotext(*v.parameters));
  }
  return j;
}

bool holds_png(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string ext = ascii_lower(e.path().extension().string());
    if (ext == ".png" && e.is_regular_file()) return true;
  }
  return false;
}

std::vector<std::string> weight_files_in(const fs::path& dir) {
  std::vector<std::string> files;
  bool has_index = false;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().string().size() > 11 &&
        e.path().string().compare(e.path().string().size() - 11, 11, ".index.json") == 0)
      has_index = true;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || !is_weight_file_name(name)) continue;
    // With an index, the shards are reported through it.
    if (has_index && name.find(".index.json") == std::string::npos && name.find("-of-") != std::string::npos) continue;
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

ojson read_json_file(const fs::path& path) {
  try {
    return ojson::parse(read_text_file(path.string(), 16 << 20));
  } catch (const ojson::exception& e) {
    throw LoadError(path.string(), std::string("not valid JSON: ") + e.what());
  }
}

ojson inspect_component_dir(const fs::path& dir, const InspectOptions& options) {
  ojson j;
  j["path"] = dir.string();
  j["kind"] = "diffusers-component";
  if (fs::exists(dir / "config.json")) {
    const ojson config = read_json_file(dir / "config.json");
    if (config.is_object() && config.value("_class_name", "") == "WanModel") {
      // The Wan 2.1 release's folder: the transformer's config beside every component's file.
      j["kind"] = "wan-original-folder";
      j["family"] = "wan2.1";
      j["model_type"] = config.value("model_type", "t2v");
      j["pipeline"] = j["model_type"] == "i2v" ? "WanImageToVideoPipeline" : "WanPipeline";
      j["tokenizer"] = fs::is_directory(dir / "google" / "umt5-xxl") ? "google/umt5-xxl" : "missing (google/umt5-xxl/)";
    }
    if (config.is_object() && config.contains("_class_name")) j["class_name"] = config["_class_name"];
    else if (config.is_object() && config.contains("architectures") && config["architectures"].is_array() &&
             !config["architectures"].empty())
      j["class_name"] = config["architectures"][0];
  }
  ojson files = ojson::array();
  for (const auto& f : weight_files_in(dir)) files.push_back(inspect_weights(f, options));
  j["files"] = std::move(files);
  return j;
}

ojson inspect_dir(const fs::path& dir, const InspectOptions& options) {
  if (fs::exists(dir / "model_index.json")) {
    const ojson index = read_json_file(dir / "model_index.json");
    if (!index.is_object()) throw LoadError((dir / "model_index.json").string(), "is not a JSON object");
    ojson j;
    j["path"] = dir.string();
    j["kind"] = "diffusers-pipeline";
    if (index.contains("_class_name")) j["class_name"] = index["_class_name"];
    ojson components = ojson::object();
    for (const auto& [name, value] : index.items()) {
      if (name.empty() || name[0] == '_' || !value.is_array() || value.size() != 2 || value[0].is_null()) continue;
      if (!fs::is_directory(dir / name)) {
        components[name] = {{"class_name", value[1]}, {"missing", true}};
        continue;
      }
      components[name] = inspect_component_dir(dir / name, options);
    }
    j["components"] = std::move(components);
    return j;
  }
  if (fs::exists(dir / "config.json")) return inspect_component_dir(dir, options);
  ojson j;
  j["path"] = dir.string();
  j["kind"] = "directory";
  ojson files = ojson::array();
  for (const auto& f : weight_files_in(dir)) files.push_back(inspect_weights(f, options));
  if (files.empty() && holds_png(dir)) return inspect_video(dir.string());  // a folder of video frames
  if (files.empty())
    throw LoadError(dir.string(), "holds no weight files, model_index.json, config.json or PNG frames");
  j["files"] = std::move(files);
  return j;
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1000) std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  return buf;
}

std::string text_of(const ojson& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

void format_weights(const ojson& j, std::ostringstream& out, const std::string& indent) {
  out << indent << j["path"].get<std::string>() << "\n";
  out << indent << "  format:     " << text_of(j["format"]) << "\n";
  out << indent << "  tensors:    " << j["tensor_count"].get<uint64_t>() << "\n";
  out << indent << "  parameters: " << j["parameter_count"].get<uint64_t>() << " ("
      << human_count(j["parameter_count"].get<uint64_t>()) << ")\n";
  out << indent << "  bytes:      " << j["total_bytes"].get<uint64_t>() << " (" << human_bytes(j["total_bytes"].get<uint64_t>())
      << ")\n";
  out << indent << "  dtypes:    ";
  for (const auto& [k, v] : j["dtypes"].items()) out << " " << k << " x" << v.get<uint64_t>();
  out << "\n";
  out << indent << "  layout:     " << text_of(j["layout"]);
  if (j.contains("class_name")) out << " (" << text_of(j["class_name"]) << ")";
  out << "\n";
  if (j.contains("family")) out << indent << "  family:     " << text_of(j["family"]) << "\n";
  if (j.contains("pipeline")) out << indent << "  pipeline:   " << text_of(j["pipeline"]) << " (as --model)\n";
  if (j.contains("details"))
    for (const auto& d : j["details"]) out << indent << "    - " << text_of(d) << "\n";
  if (j.contains("components")) {
    out << indent << "  components:\n";
    for (const auto& [k, v] : j["components"].items())
      out << indent << "    " << k << ": " << v.get<uint64_t>() << " tensors\n";
  }
  if (j.contains("metadata")) {
    out << indent << "  metadata:\n";
    for (const auto& [k, v] : j["metadata"].items()) {
      std::string s = text_of(v);
      if (s.size() > 120) s = s.substr(0, 117) + "...";
      out << indent << "    " << k << ": " << s << "\n";
    }
  }
  if (j.contains("sha256"))
    out << indent << "  sha256:     " << text_of(j["sha256"]) << " (model hash " << text_of(j["model_hash"]) << ")\n";
  if (j.contains("tensors"))
    for (const auto& t : j["tensors"])
      out << indent << "    " << text_of(t["name"]) << "  " << text_of(t.contains("storage") ? t["storage"] : t["dtype"]) << " "
          << t["shape"].dump() << "\n";
}

void format_any(const ojson& j, std::ostringstream& out, const std::string& indent) {
  const std::string kind = j.value("kind", "");
  if (kind == "weights") return format_weights(j, out, indent);
  if (kind == "image") {
    out << indent << j["path"].get<std::string>() << "\n";
    out << indent << "  image: " << j["width"] << "x" << j["height"] << ", " << j["channels"] << " channel(s), "
        << j["bit_depth"] << "-bit\n";
    if (j.contains("parameters")) {
      out << indent << "  generation parameters:\n";
      for (const auto& [k, v] : j["parameters"].items()) out << indent << "    " << k << ": " << text_of(v) << "\n";
    } else {
      out << indent << "  no generation parameters\n";
    }
    for (const auto& [k, v] : j["text"].items())
      if (k != "parameters") out << indent << "  text " << k << ": " << text_of(v) << "\n";
    return;
  }
  if (kind == "video") {
    char fps[32];
    std::snprintf(fps, sizeof fps, "%.6g", j["fps"].get<double>());
    out << indent << j["path"].get<std::string>() << "\n";
    out << indent << "  video: " << j["width"] << "x" << j["height"] << ", " << j["frame_count"] << " frame(s), "
        << (j["fps"].get<double>() > 0 ? std::string(fps) + " fps" : std::string("fps unknown")) << ", "
        << text_of(j["codec"]) << " (" << text_of(j["format"]) << ")\n";
    if (j.contains("parameters")) {
      out << indent << "  generation parameters:\n";
      for (const auto& [k, v] : j["parameters"].items()) out << indent << "    " << k << ": " << text_of(v) << "\n";
    } else {
      out << indent << "  no generation parameters\n";
    }
    for (const auto& [k, v] : j["metadata"].items())
      if (!j.contains("parameters_text") || v != j["parameters_text"])
        out << indent << "  metadata " << k << ": " << text_of(v) << "\n";
    return;
  }
  out << indent << j["path"].get<std::string>() << ": " << kind;
  if (j.contains("class_name")) out << " (" << text_of(j["class_name"]) << ")";
  out << "\n";
  for (const char* key : {"family", "model_type", "pipeline", "tokenizer"})
    if (j.contains(key)) out << indent << "  " << key << ": " << text_of(j[key]) << "\n";
  if (j.contains("components"))
    for (const auto& [name, c] : j["components"].items()) {
      out << indent << "  [" << name << "]";
      if (c.value("missing", false)) {
        out << " missing folder (" << text_of(c["class_name"]) << ")\n";
        continue;
      }
      out << "\n";
      format_any(c, out, indent + "    ");
    }
  if (j.contains("files"))
    for (const auto& f : j["files"]) format_any(f, out, indent + "  ");
}

}  // namespace

ojson inspect_path(const std::string& path, const InspectOptions& options) {
  if (!fs::exists(path)) throw LoadError(path, "no such file or directory");
  if (fs::is_directory(path)) return inspect_dir(path, options);
  if (is_png(path)) return inspect_png(path);
  if (io::looks_like_video_file(path)) return inspect_video(path);
  return inspect_weights(path, options);
}

std::string format_inspection(const ojson& info) {
  std::ostringstream out;
  format_any(info, out, "");
  return out.str();
}

}  // namespace genvis::models
