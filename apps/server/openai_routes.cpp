// OpenAI's images API: /v1/images/generations, /v1/images/edits (multipart), /v1/models.
#include "routes.h"

#include "core/file.h"
#include "io/image_tensor.h"

#include <chrono>
#include <filesystem>

namespace genvis::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The fields both routes share, from JSON or from multipart text parts.
struct ImageRequest {
  std::string prompt, size, response_format = "b64_json", model;
  int64_t n = 1;
};

ImageRequest read_common(const json& body) {
  ImageRequest r;
  const auto prompt = get_string(body, "prompt");
  if (!prompt || prompt->empty()) throw BadRequest("'prompt' is required", "prompt");
  r.prompt = *prompt;
  r.n = get_int(body, "n").value_or(1);
  if (r.n < 1) throw BadRequest("'n' must be at least 1", "n");
  r.size = get_string(body, "size").value_or("");
  if (r.size == "auto") r.size.clear();
  r.response_format = get_string(body, "response_format").value_or("b64_json");
  if (r.response_format != "b64_json" && r.response_format != "url")
    throw BadRequest("'response_format' must be \"b64_json\" or \"url\"", "response_format");
  r.model = get_string(body, "model").value_or("");
  return r;
}

// A model named by the request is loaded when it is one of the server's checkpoints; other names
// (clients send "dall-e-2" by default) use the resident model.
void maybe_switch_model(Server::State& s, const std::string& model) {
  if (model.empty()) return;
  for (const auto& c : s.host->checkpoints())
    if (model == c.name || model == c.title) {
      s.host->load(model);  // nothing to do when it is the resident one
      return;
    }
}

json a1111_body(const ImageRequest& r) {
  json body = {{"prompt", r.prompt}, {"batch_size", r.n}};
  if (!r.size.empty()) {
    const auto [w, h] = parse_size(r.size);
    body["width"] = w;
    body["height"] = h;
  }
  return body;
}

void answer(Server::State& s, const httplib::Request& req, httplib::Response& res, const ImageRequest& r,
            JobInput in) {
  s.refuse_video(in, "model");
  const auto job = s.run_job(std::move(in));
  if (send_job_failure(res, Api::OpenAI, *job)) return;
  const auto out = job->output();
  json data = json::array();
  for (const auto& png : out->pngs) {
    if (r.response_format == "url") {
      const std::string name = unguessable_name(job->id(), "png");
      write_file_atomic((fs::path(s.queue->output_dir()) / name).string(), png);
      const std::string host = req.get_header_value("Host").empty() ? s.options.host + ":" + std::to_string(s.port)
                                                                    : req.get_header_value("Host");
      data.push_back({{"url", "http://" + host + "/genvis/v1/files/" + name}});
    } else {
      data.push_back({{"b64_json", base64_encode(png)}});
    }
  }
  send_json(res, {{"created", unix_now()}, {"data", data}});
}

// An OpenAI mask: fully transparent pixels are repainted; a mask without alpha: white is.
at::Tensor openai_mask(const std::string& png, const Limits& limits) {
  const io::Image m = decode_png_checked(png, "mask", limits);
  if (!m.has_alpha()) return decode_image(png, "mask", limits, /*mask=*/true);
  const io::Image rgba = m.with_channels(4);
  at::Tensor mask = at::zeros({1, 1, rgba.height, rgba.width});
  auto a = mask.accessor<float, 4>();
  for (int y = 0; y < rgba.height; ++y)
    for (int x = 0; x < rgba.width; ++x) a[0][0][y][x] = rgba.at(x, y, 3) == 0 ? 1.f : 0.f;
  return mask;
}

}  // namespace

void add_openai_routes(Server::State& state) {
  Server::State& s = state;
  s.http.Post("/v1/images/generations", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::OpenAI, [&] {
      const ImageRequest r = read_common(parse_object(req.body));
      maybe_switch_model(s, r.model);
      answer(s, req, res, r, a1111_job(a1111_body(r), s.context(/*drop_unsupported=*/true)));
    });
  });
  s.http.Post("/v1/images/edits", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::OpenAI, [&] {
      if (!req.is_multipart_form_data())
        throw BadRequest("send multipart/form-data with 'image', 'prompt' and optionally 'mask'", "image", 415);
      json fields = json::object();
      for (const char* key : {"prompt", "size", "response_format", "model"})
        if (req.has_file(key)) fields[key] = req.get_file_value(key).content;
      if (req.has_file("n")) {
        try {
          fields["n"] = std::stoll(req.get_file_value("n").content);
        } catch (const std::exception&) {
          throw BadRequest("'n' must be an integer", "n");
        }
      }
      // `image` or `image[]` (newer clients send a list; the first image is used).
      const char* image_key = req.has_file("image") ? "image" : req.has_file("image[]") ? "image[]" : nullptr;
      if (!image_key) throw BadRequest("'image' is required (a PNG file)", "image");
      const ImageRequest r = read_common(fields);
      maybe_switch_model(s, r.model);
      const std::string image = req.get_file_value(image_key).content;
      const io::Image decoded = decode_png_checked(image, "image", s.options.limits);
      json body = a1111_body(r);
      body["init_images"] = {base64_encode(image)};
      body["denoising_strength"] = 1.0;
      JobInput in = a1111_job(body, s.context(/*drop_unsupported=*/true));
      // The mask file, else the image's own transparency (as OpenAI), at the init image's size.
      at::Tensor mask;
      if (req.has_file("mask")) mask = openai_mask(req.get_file_value("mask").content, s.options.limits);
      else if (decoded.has_alpha()) mask = openai_mask(image, s.options.limits);
      if (mask.defined()) {
        const auto& init = in.request.init_image;
        if (mask.size(2) != init.size(2) || mask.size(3) != init.size(3))
          mask = at::upsample_nearest2d(mask, {init.size(2), init.size(3)});
        in.request.mask = mask;
      }
      check_limits(in, s.context(true));
      answer(s, req, res, r, std::move(in));
    });
  });
  s.http.Get("/v1/models", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::OpenAI, [&] {
      json data = json::array();
      for (const auto& c : s.host->checkpoints())
        data.push_back({{"id", c.name}, {"object", "model"}, {"created", 0}, {"owned_by", "genvis"}});
      send_json(res, {{"object", "list"}, {"data", data}});
    });
  });
}

}  // namespace genvis::server
