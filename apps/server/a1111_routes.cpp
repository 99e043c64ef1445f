// AUTOMATIC1111's /sdapi/v1 routes, with its field names (docs/server.md).
#include "routes.h"

#include "io/image.h"
#include "io/infotext.h"
#include "schedulers/registry.h"

#include <chrono>
#include <filesystem>

namespace genvis::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<fs::path> files_in(const std::string& dir, std::initializer_list<const char*> extensions) {
  std::vector<fs::path> out;
  if (dir.empty() || !fs::is_directory(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    for (const char* e : extensions)
      if (entry.path().extension() == e) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A1111's "info" text: the generation as JSON.
json info_of(const JobInput& in, const JobOutput& out, const std::string& model_name, const std::string& model_hash) {
  const io::GenerationParameters& p = out.first;
  const int64_t n = static_cast<int64_t>(out.infotexts.size());
  json seeds = json::array();
  for (const auto s : out.seeds) seeds.push_back(s);
  return {{"prompt", in.request.prompt},
          {"all_prompts", std::vector<std::string>(static_cast<size_t>(n), in.request.prompt)},
          {"negative_prompt", in.request.negative_prompt},
          {"all_negative_prompts", std::vector<std::string>(static_cast<size_t>(n), in.request.negative_prompt)},
          {"seed", out.seeds.empty() ? json(in.request.seed) : json(out.seeds.front())},
          {"all_seeds", seeds},
          {"subseed", -1},
          {"all_subseeds", std::vector<int>(static_cast<size_t>(n), -1)},
          {"subseed_strength", 0},
          {"width", out.width},
          {"height", out.height},
          {"sampler_name", p.sampler},
          {"scheduler", p.schedule.empty() ? "Automatic" : p.schedule},
          {"cfg_scale", p.cfg_scale ? json(*p.cfg_scale) : json()},
          {"steps", p.steps ? json(*p.steps) : json()},
          {"batch_size", in.request.batch},
          {"n_iter", in.n_iter},
          {"restore_faces", false},
          {"sd_model_name", model_name},
          {"sd_model_hash", model_hash.empty() ? json() : json(model_hash)},
          {"denoising_strength", in.request.strength ? json(*in.request.strength) : json()},
          {"clip_skip", in.request.extras.value("clip_skip", 1)},
          {"extra_generation_params", json::object()},
          {"index_of_first_image", 0},
          {"infotexts", out.infotexts},
          {"styles", json::array()},
          {"job_timestamp", std::to_string(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()))},
          {"is_using_inpainting_conditioning", in.request.mask.defined()}};
}

void generate_route(Server::State& s, const httplib::Request& req, httplib::Response& res, bool img2img) {
  const json body = parse_object(req.body);
  if (img2img && (!body.contains("init_images") || !body["init_images"].is_array() || body["init_images"].empty()))
    throw BadRequest("'init_images' must hold one base64 PNG", "init_images");
  JobInput in = a1111_job(body, s.context(/*drop_unsupported=*/true));
  s.refuse_video(in, "frames");
  {
    std::lock_guard lock(s.option_mutex);
    if (s.clip_stop_at_last_layers > 1 && !in.request.extras.contains("clip_skip") &&
        [&] {
          const auto extras = s.host->info().extras;
          return std::count(extras.begin(), extras.end(), "clip_skip") > 0;
        }())
      in.request.extras["clip_skip"] = s.clip_stop_at_last_layers;
  }
  const auto job = s.run_job(std::move(in));
  const JobStatus st = job->status();
  json images = json::array();
  json info;
  if (st.state == JobState::Cancelled) {
    // A1111 answers an interrupted request normally; this one has no finished image.
    info = {{"interrupted", true}, {"infotexts", json::array()}};
  } else {
    if (send_job_failure(res, Api::A1111, *job)) return;
    const auto out = job->output();
    if (get_bool(body, "send_images").value_or(true))
      for (const auto& png : out->pngs) images.push_back(base64_encode(png));
    const CheckpointEntry model = s.host->current();
    info = info_of(job->input(), *out, model.name, model.hash);
  }
  json parameters = body;
  for (const char* big : {"init_images", "mask"})
    if (parameters.contains(big)) parameters[big] = nullptr;
  send_json(res, {{"images", images}, {"parameters", parameters}, {"info", info.dump()}});
}

json png_info(const std::string& png) {
  io::PngText chunks;
  try {
    chunks = io::decode_png_text(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "image");
  } catch (const Error& e) {
    throw BadRequest(std::string("'image' is not a valid PNG: ") + e.what(), "image");
  }
  std::string text;
  json items = json::object();
  for (const auto& [key, value] : chunks) {
    if (key == io::kInfotextKey) text = value;
    else items[key] = value;
  }
  json parsed = json::object();
  if (!text.empty()) {
    const io::GenerationParameters p = io::parse_infotext(text);
    parsed["Prompt"] = p.prompt;
    parsed["Negative prompt"] = p.negative_prompt;
    if (p.steps) parsed["Steps"] = *p.steps;
    if (!p.sampler.empty()) parsed["Sampler"] = p.sampler;
    if (!p.schedule.empty()) parsed["Schedule type"] = p.schedule;
    if (p.cfg_scale) parsed["CFG scale"] = *p.cfg_scale;
    if (p.seed) parsed["Seed"] = *p.seed;
    if (p.width && p.height) {
      parsed["Size-1"] = *p.width;
      parsed["Size-2"] = *p.height;
    }
    if (!p.model_hash.empty()) parsed["Model hash"] = p.model_hash;
    if (!p.model.empty()) parsed["Model"] = p.model;
    for (const auto& [k, v] : p.extra) parsed[k] = v;
  }
  return {{"info", text}, {"items", items}, {"parameters", parsed}};
}

json options_of(Server::State& s) {
  const CheckpointEntry m = s.host->current();
  std::lock_guard lock(s.option_mutex);
  return {{"sd_model_checkpoint", m.title},
          {"sd_checkpoint_hash", m.hash.empty() ? json() : json(m.hash)},
          {"CLIP_stop_at_last_layers", s.clip_stop_at_last_layers},
          {"samples_format", "png"},
          {"sd_lora", ""},
          {"show_progress_every_n_steps", s.options.preview_every}};
}

}  // namespace

void add_a1111_routes(Server::State& state) {
  Server::State& s = state;
  auto& http = s.http;
  http.Post("/sdapi/v1/txt2img", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::A1111, [&] { generate_route(s, req, res, false); });
  });
  http.Post("/sdapi/v1/img2img", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::A1111, [&] { generate_route(s, req, res, true); });
  });
  http.Get("/sdapi/v1/options", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::A1111, [&] { send_json(res, options_of(s)); });
  });
  http.Post("/sdapi/v1/options", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      const json body = parse_object(req.body);
      if (const auto skip = get_int(body, "CLIP_stop_at_last_layers")) {
        if (*skip < 1 || *skip > 12)
          throw BadRequest("'CLIP_stop_at_last_layers' must be 1..12", "CLIP_stop_at_last_layers");
        std::lock_guard lock(s.option_mutex);
        s.clip_stop_at_last_layers = *skip;
      }
      if (const auto name = get_string(body, "sd_model_checkpoint")) {
        try {
          s.host->load(*name);
        } catch (const UsageError& e) {
          throw BadRequest(e.what(), "sd_model_checkpoint");
        }
      }
      // Other keys are A1111 settings genvis has no use for; A1111 ignores keys it does not know.
      send_json(res, nullptr);
    });
  });
  http.Get("/sdapi/v1/sd-models", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      json list = json::array();
      for (const auto& c : s.host->checkpoints())
        list.push_back({{"title", c.title},
                        {"model_name", c.name},
                        {"hash", c.hash.empty() ? json() : json(c.hash.substr(0, 8))},
                        {"sha256", json()},
                        {"filename", fs::path(c.path).filename().string()},
                        {"config", json()}});
      send_json(res, list);
    });
  });
  http.Get("/sdapi/v1/samplers", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      json list = json::array();
      const auto info = s.host->info();
      if (info.supports.sampler)
        for (const auto& name : info.samplers) {
          const auto& sampler = schedulers::sampler_info(name);
          list.push_back({{"name", sampler.display}, {"aliases", {sampler.name}}, {"options", json::object()}});
        }
      send_json(res, list);
    });
  });
  http.Get("/sdapi/v1/schedulers", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      json list = json::array();
      if (s.host->info().supports.schedule)
        for (const auto& name : schedulers::schedule_names())
          list.push_back({{"name", name == "default" ? "automatic" : name},
                          {"label", schedulers::schedule_display_name(schedulers::schedule_spacing(name))},
                          {"aliases", json()},
                          {"default_rho", -1},
                          {"need_inner_model", false}});
      send_json(res, list);
    });
  });
  http.Get("/sdapi/v1/loras", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      json list = json::array();
      for (const auto& p : files_in(s.options.lora_dir, {".safetensors", ".pt", ".ckpt"}))
        list.push_back({{"name", p.stem().string()}, {"alias", p.stem().string()},
                        {"path", p.filename().string()}, {"metadata", json::object()}});
      send_json(res, list);
    });
  });
  http.Post("/sdapi/v1/refresh-loras", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, nullptr);  // the folder is listed afresh on each request
  });
  http.Get("/sdapi/v1/embeddings", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      json loaded = json::object();
      for (const auto& p : files_in(s.options.embeddings_dir, {".safetensors", ".pt", ".bin"}))
        loaded[p.stem().string()] = {{"step", json()}, {"sd_checkpoint", json()}, {"sd_checkpoint_name", json()},
                                     {"shape", json()}, {"vectors", json()}};
      send_json(res, {{"loaded", loaded}, {"skipped", json::object()}});
    });
  });
  http.Post("/sdapi/v1/png-info", [](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      const json body = parse_object(req.body);
      const auto image = get_string(body, "image");
      if (!image || image->empty()) throw BadRequest("'image' is required (a base64 PNG)", "image");
      send_json(res, png_info(base64_decode(*image, "image")));
    });
  });
  http.Get("/sdapi/v1/progress", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      const auto job = s.queue->running();
      const bool skip_image = req.get_param_value("skip_current_image") == "true";
      json state = {{"skipped", false}, {"interrupted", false}, {"job", ""},
                    {"job_count", static_cast<int64_t>(s.queue->pending())}, {"job_timestamp", "0"},
                    {"job_no", 0}, {"sampling_step", 0}, {"sampling_steps", 0}};
      double progress = 0, eta = 0;
      json image = nullptr;
      if (job) {
        const JobStatus st = job->status();
        state["job"] = st.id;
        state["interrupted"] = job->cancel_requested();
        state["job_timestamp"] = std::to_string(static_cast<int64_t>(st.created));
        state["sampling_step"] = st.step;
        state["sampling_steps"] = st.total;
        progress = st.total > 0 ? static_cast<double>(st.step) / static_cast<double>(st.total) : 0.0;
        eta = st.eta;
        if (!skip_image)
          if (const std::string png = job->preview_png(); !png.empty()) image = base64_encode(png);
      }
      send_json(res, {{"progress", progress}, {"eta_relative", eta}, {"state", state},
                      {"current_image", image}, {"textinfo", nullptr}});
    });
  });
  for (const char* route : {"/sdapi/v1/interrupt", "/sdapi/v1/skip"})
    http.Post(route, [&s](const httplib::Request&, httplib::Response& res) {
      if (const auto job = s.queue->running()) job->cancel();
      send_json(res, nullptr);
    });
  http.Post("/sdapi/v1/refresh-checkpoints", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::A1111, [&] {
      s.host->refresh();
      send_json(res, nullptr);
    });
  });
}

}  // namespace genvis::server
