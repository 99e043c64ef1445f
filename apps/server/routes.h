// What the route files share: the server's state and the error answers of each API.
#pragma once
#include "server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace genvis::server {

struct Server::State {
  ServerOptions options;
  std::unique_ptr<ModelHost> host;
  std::unique_ptr<JobQueue> queue;
  httplib::Server http;
  int port = 0;
  bool owns_output_dir = false;
  std::atomic<bool> stopping{false};
  std::mutex option_mutex;
  int64_t clip_stop_at_last_layers = 1;  // A1111 option, a default for requests

  JobContext context(bool drop_unsupported) const {
    return {host->info(), options.limits, options.lora_dir, options.embeddings_dir, drop_unsupported};
  }
  // BadRequest when the job would make a video: the synchronous routes answer images only.
  void refuse_video(const JobInput& in, const std::string& field) const;
  // Submits and waits (synchronous routes); QueueFull and BadRequest propagate.
  std::shared_ptr<Job> run_job(JobInput input);
};

enum class Api { A1111, OpenAI, Genvis };

// The JSON error body of each API for a status and message (naming `field` where known).
void send_error(httplib::Response& res, Api api, int status, const std::string& message, const std::string& field = "");
// Runs a handler, turning BadRequest, QueueFull, engine errors and anything else into the
// API's error answer (never a crash).
void guarded(httplib::Response& res, Api api, const std::function<void()>& handler);
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);

// A finished job's failure as the API's answer; true when the job did not succeed.
bool send_job_failure(httplib::Response& res, Api api, const Job& job);

void add_a1111_routes(Server::State& state);
void add_openai_routes(Server::State& state);
void add_job_routes(Server::State& state);
void add_web_ui_routes(Server::State& state);

}  // namespace genvis::server
