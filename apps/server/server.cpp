#include "routes.h"

#include "core/error.h"
#include "core/log.h"

#include <filesystem>
#include <random>

namespace genvis::server {

namespace fs = std::filesystem;
using nlohmann::json;

void send_json(httplib::Response& res, const json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

namespace {

const char* status_text(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

Api api_of(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 ? Api::OpenAI : path.rfind("/sdapi/", 0) == 0 ? Api::A1111 : Api::Genvis;
}

}  // namespace

void send_error(httplib::Response& res, Api api, int status, const std::string& message, const std::string& field) {
  json body;
  switch (api) {
    case Api::A1111:
      body = {{"error", status_text(status)}, {"detail", message}};
      if (!field.empty()) body["field"] = field;
      break;
    case Api::OpenAI: {
      const char* type = status == 401   ? "authentication_error"
                         : status == 429 ? "rate_limit_error"
                         : status >= 500 ? "server_error"
                                         : "invalid_request_error";
      body = {{"error", {{"message", message}, {"type", type}, {"param", field.empty() ? json() : json(field)},
                         {"code", json()}}}};
      break;
    }
    case Api::Genvis:
      body = {{"error", {{"message", message}}}};
      if (!field.empty()) body["error"]["field"] = field;
      break;
  }
  send_json(res, body, status);
}

void guarded(httplib::Response& res, Api api, const std::function<void()>& handler) {
  try {
    handler();
  } catch (const BadRequest& e) {
    send_error(res, api, e.status(), e.what(), e.field());
  } catch (const QueueFull& e) {
    res.set_header("Retry-After", std::to_string(e.retry_after_s()));
    send_error(res, api, 429, e.what());
  } catch (const UsageError& e) {
    const BadRequest b = engine_error(e.what());
    send_error(res, api, 400, b.what(), b.field());
  } catch (const LoadError& e) {
    send_error(res, api, 400, e.what());
  } catch (const std::exception& e) {
    log_warn(std::string("request failed: ") + e.what());
    send_error(res, api, 500, e.what());
  }
}

bool send_job_failure(httplib::Response& res, Api api, const Job& job) {
  const JobStatus s = job.status();
  if (s.state == JobState::Done) return false;
  if (s.state == JobState::Cancelled) {
    send_error(res, api, 409, "the job was cancelled (" + s.error + ")");
  } else if (s.error_status == 400) {
    const BadRequest b = engine_error(s.error);
    send_error(res, api, 400, b.what(), b.field());
  } else {
    send_error(res, api, 500, s.error);
  }
  return true;
}

void Server::State::refuse_video(const JobInput& in, const std::string& field) const {
  if (in.request.num_frames.value_or(host->info().native_frames) > 1)
    throw BadRequest("this request makes a video: use POST /genvis/v1/jobs (its result links the video file)", field);
}

std::shared_ptr<Job> Server::State::run_job(JobInput input) {
  auto job = queue->submit(std::move(input));
  job->wait();
  queue->forget(job->id());
  return job;
}

Server::Server(ServerOptions options) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = std::move(options);
  if (s.options.queue_depth < 1) throw UsageError("--queue-depth must be at least 1");
  if (s.options.threads < 2) throw UsageError("--threads must be at least 2");
  for (const auto& [dir, flag] : {std::pair{s.options.lora_dir, "--lora-dir"}, {s.options.embeddings_dir, "--embeddings-dir"}})
    if (!dir.empty() && !fs::is_directory(dir)) throw UsageError(std::string(flag) + " " + dir + " is not a folder");
  if (s.options.output_dir.empty()) {
    s.options.output_dir =
        (fs::temp_directory_path() / ("genvis-serve-" + std::to_string(std::random_device{}()))).string();
    s.owns_output_dir = true;
  }
  s.host = std::make_unique<ModelHost>(s.options.model);
  s.queue = std::make_unique<JobQueue>(
      *s.host, JobQueueOptions{.depth = s.options.queue_depth, .preview_every = s.options.preview_every,
                               .output_dir = s.options.output_dir});

  const int threads = s.options.threads;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.http.set_payload_max_length(s.options.limits.max_body_bytes);
  s.http.set_read_timeout(30, 0);
  s.http.set_write_timeout(30, 0);
  s.http.set_keep_alive_max_count(100);

  // Authentication and CORS before any route; the web UI's static files hold no data.
  s.http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (!s.options.cors_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", s.options.cors_origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Max-Age", "600");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // The web UI's files hold no data; served files are reachable only by their unguessable names.
    const bool is_static = req.method == "GET" && (req.path == "/" || req.path == "/app.js" || req.path == "/style.css" ||
                                                   req.path.rfind("/genvis/v1/files/", 0) == 0);
    if (!s.options.api_key.empty() && !is_static) {
      const std::string expected = "Bearer " + s.options.api_key;
      const std::string given = req.get_header_value("Authorization");
      // Constant-time comparison: the key is a secret.
      unsigned char diff = given.size() == expected.size() ? 0 : 1;
      for (size_t i = 0; i < given.size() && i < expected.size(); ++i)
        diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
      if (diff != 0) {
        const Api api = api_of(req.path);
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, api, 401, "missing or wrong API key (Authorization: Bearer KEY)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a route's own answer
    const Api api = api_of(req.path);
    const std::string message = res.status == 404   ? "no route " + req.method + " " + req.path
                                : res.status == 413 ? "the request body is over the limit (--max-body-mb)"
                                                    : status_text(res.status);
    send_error(res, api, res.status, message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      send_error(res, Api::Genvis, 500, e.what());
    } catch (...) {
      send_error(res, Api::Genvis, 500, "unknown error");
    }
  });

  add_a1111_routes(s);
  add_openai_routes(s);
  add_job_routes(s);
  add_web_ui_routes(s);

  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port <= 0)
    throw UsageError("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                     " (in use, or not an address of this machine)");
}

Server::~Server() {
  stop();
  if (state_->owns_output_dir) {
    std::error_code ec;
    fs::remove_all(state_->options.output_dir, ec);
  }
}

int Server::port() const { return state_->port; }

void Server::run() { state_->http.listen_after_bind(); }

void Server::stop() {
  if (state_->stopping.exchange(true)) return;
  state_->queue->shutdown();  // waiting requests see their jobs cancelled and answer
  state_->http.stop();
}

}  // namespace genvis::server
