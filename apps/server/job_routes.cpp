// genvis' own API: asynchronous jobs with progress events, the model's description, served files,
// and the web UI's static files.
#include "routes.h"
#include "webui_assets.h"

#include "core/file.h"

#include <filesystem>
#include <regex>

namespace genvis::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json status_json(const JobStatus& s) {
  return {{"id", s.id},
          {"state", state_name(s.state)},
          {"queue_position", s.queue_position},
          {"step", s.step},
          {"total", s.total},
          {"elapsed", s.elapsed},
          {"eta", s.eta},
          {"error", s.error.empty() ? json() : json(s.error)},
          {"created", s.created}};
}

json result_json(const Job& job) {
  const auto out = job.output();
  json images = json::array();
  for (const auto& png : out->pngs) images.push_back(base64_encode(png));
  json body = {{"id", job.id()}, {"images", images}, {"infotexts", out->infotexts}, {"seeds", out->seeds}};
  if (!out->video_file.empty())
    body["video"] = {{"url", "/genvis/v1/files/" + out->video_file}, {"mime", out->video_mime}};
  return body;
}

std::shared_ptr<Job> job_of(Server::State& s, const httplib::Request& req) {
  auto job = s.queue->find(req.matches[1]);
  if (!job) throw BadRequest("no job '" + std::string(req.matches[1]) + "' (finished jobs are kept for a while)", "id", 404);
  return job;
}

std::string sse(const char* event, const json& data) {
  return std::string("event: ") + event + "\ndata: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace

void add_job_routes(Server::State& state) {
  Server::State& s = state;
  auto& http = s.http;
  http.Get("/genvis/v1/info", [&s](const httplib::Request&, httplib::Response& res) {
    guarded(res, Api::Genvis, [&] {
      const auto& l = s.options.limits;
      json model = s.host->info().to_json();
      model["checkpoint"] = s.host->current().title;
      send_json(res, {{"model", model},
                      {"limits", {{"max_width", l.max_width}, {"max_height", l.max_height}, {"max_steps", l.max_steps},
                                  {"max_frames", l.max_frames}, {"max_batch", l.max_batch},
                                  {"max_body_bytes", l.max_body_bytes}}},
                      {"queue", {{"depth", s.options.queue_depth}, {"pending", s.queue->pending()}}},
                      {"loras", !s.options.lora_dir.empty()},
                      {"embeddings", !s.options.embeddings_dir.empty()}});
    });
  });
  http.Post("/genvis/v1/jobs", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::Genvis, [&] {
      JobInput in = a1111_job(parse_object(req.body), s.context(/*drop_unsupported=*/false));
      const auto job = s.queue->submit(std::move(in));
      send_json(res, {{"id", job->id()}, {"status", status_json(job->status())}}, 202);
    });
  });
  http.Get(R"(/genvis/v1/jobs/([A-Za-z0-9_-]+))", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::Genvis, [&] { send_json(res, status_json(job_of(s, req)->status())); });
  });
  http.Delete(R"(/genvis/v1/jobs/([A-Za-z0-9_-]+))", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::Genvis, [&] {
      const auto job = job_of(s, req);
      job->cancel();
      send_json(res, status_json(job->status()));
    });
  });
  http.Get(R"(/genvis/v1/jobs/([A-Za-z0-9_-]+)/result)", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::Genvis, [&] {
      const auto job = job_of(s, req);
      const JobStatus st = job->status();
      if (st.state == JobState::Queued || st.state == JobState::Running)
        throw BadRequest("the job is " + std::string(state_name(st.state)) + " (step " + std::to_string(st.step) + "/" +
                             std::to_string(st.total) + ")",
                         "", 409);
      if (send_job_failure(res, Api::Genvis, *job)) return;
      send_json(res, result_json(*job));
    });
  });
  http.Get(R"(/genvis/v1/jobs/([A-Za-z0-9_-]+)/events)", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::Genvis, [&] {
      const auto job = job_of(s, req);
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
      auto version = std::make_shared<int64_t>(-1);
      auto preview_sent = std::make_shared<int64_t>(0);
      res.set_chunked_content_provider("text/event-stream", [&s, job, version, preview_sent](size_t, httplib::DataSink& sink) {
        // One event per change; a comment every 15 s keeps proxies from closing the stream.
        const int64_t seen = *version;
        *version = job->wait_change(seen, seen < 0 ? 0 : 15);
        if (!sink.is_writable()) return false;  // the client went away: the job goes on
        const JobStatus st = job->status();
        std::string out;
        const bool finished = finished_state(st.state);  // from this snapshot, not a later read
        if (*version == seen && !finished) {
          out = ": keep-alive\n\n";
        } else {
          json data = status_json(st);
          if (st.preview_version != *preview_sent) {
            if (const std::string png = job->preview_png(); !png.empty()) data["preview"] = base64_encode(png);
            *preview_sent = st.preview_version;
          }
          out = sse("progress", data);
        }
        if (finished) {
          if (st.state == JobState::Done) out += sse("done", result_json(*job));
          else out += sse(st.state == JobState::Cancelled ? "cancelled" : "error", status_json(st));
          sink.write(out.data(), out.size());
          sink.done();
          return true;
        }
        if (s.stopping) return false;
        return sink.write(out.data(), out.size());
      });
    });
  });
  http.Get(R"(/genvis/v1/files/([A-Za-z0-9_.-]+))", [&s](const httplib::Request& req, httplib::Response& res) {
    guarded(res, Api::Genvis, [&] {
      const std::string name = req.matches[1];
      const fs::path path = fs::path(s.queue->output_dir()) / name;
      if (name.find("..") != std::string::npos || !fs::is_regular_file(path))
        throw BadRequest("no file '" + name + "'", "", 404);
      const std::string ext = path.extension().string();
      const char* mime = ext == ".png" ? "image/png" : ext == ".webp" ? "image/webp" : ext == ".mp4" ? "video/mp4"
                                                                                                     : "application/octet-stream";
      res.set_content(read_text_file(path.string(), size_t{1} << 31), mime);
    });
  });
}

void add_web_ui_routes(Server::State& state) {
  for (size_t i = 0; i < kWebAssetCount; ++i) {
    const WebAsset asset = kWebAssets[i];
    state.http.Get(asset.path, [asset](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_content(asset.content, asset.mime);
    });
  }
}

}  // namespace genvis::server
