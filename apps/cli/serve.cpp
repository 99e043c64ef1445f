#include "commands.h"

#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "server.h"

#include <csignal>
#include <pthread.h>
#include <thread>

namespace genvis::cli {

namespace {

struct ServeOptions {
  server::ServerOptions server;
  std::string device = "auto", dtype = "auto";
  int64_t max_body_mb = 50;
};

void run_serve(ServeOptions& o) {
  const ComputePolicy policy = resolve_policy(o.device, o.dtype);
  o.server.model.source.device = policy.device;
  o.server.model.source.dtype = policy.dtype;
  if (o.max_body_mb < 1 || o.max_body_mb > 4096) throw UsageError("--max-body-mb must be 1..4096");
  o.server.limits.max_body_bytes = static_cast<size_t>(o.max_body_mb) << 20;
  if (o.server.port < 0 || o.server.port > 65535) throw UsageError("--port must be 0..65535");
  auto& l = o.server.limits;
  for (const auto& [value, flag] : {std::pair{l.max_width, "--max-width"}, {l.max_height, "--max-height"},
                                    {l.max_steps, "--max-steps"}, {l.max_frames, "--max-frames"},
                                    {l.max_batch, "--max-batch"}})
    if (value < 1) throw UsageError(std::string(flag) + " must be at least 1");

  // SIGTERM/SIGINT are taken by a thread that stops the server (signal handlers may not lock).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  log_info("loading the model ...");
  server::Server server(o.server);
  log_info("genvis serve: http://" + o.server.host + ":" + std::to_string(server.port()) + "/ (web UI), /sdapi/v1, " +
           "/v1/images, /genvis/v1" + (o.server.api_key.empty() ? "" : " (API key required)"));
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log_info(std::string("genvis serve: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
             ", stopping (queued jobs cancelled, the running one stopped within a step)");
    server.stop();
  });
  server.run();
  server.stop();
  // Wake the waiter if run() ended for another reason.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  log_info("genvis serve: stopped");
}

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto& s = o->server;
  CLI::App* cmd = app.add_subcommand("serve", "HTTP server: AUTOMATIC1111 /sdapi/v1, OpenAI /v1/images, genvis jobs "
                                              "(/genvis/v1) and a web UI at / (docs/server.md)");
  cmd->add_option("--model", s.model.source.model,
                  "Model loaded at start (folder or file, as generate --model; default: the built-in model)");
  cmd->add_option("--models-dir", s.model.models_dir,
                  "Folder of checkpoints that sd-models lists and sd_model_checkpoint switches between");
  cmd->add_option("--host", s.host, "Address to listen on (0.0.0.0: every interface; set --api-key then)")
      ->capture_default_str();
  cmd->add_option("--port", s.port, "Port (0: any free port, printed at start)")->capture_default_str();
  cmd->add_option("--api-key", s.api_key, "Require 'Authorization: Bearer KEY' on every route but the web UI's files");
  cmd->add_option("--cors", s.cors_origin, "Allow cross-origin requests from this origin (e.g. http://localhost:3000, or *)");
  cmd->add_option("--lora-dir", s.lora_dir, "Folder of LoRAs for <lora:NAME:W> tags and /sdapi/v1/loras");
  cmd->add_option("--embeddings-dir", s.embeddings_dir, "Folder of textual-inversion embeddings");
  cmd->add_option("--output-dir", s.output_dir, "Where videos and url results are kept (default: a temporary folder)");
  cmd->add_option("--queue-depth", s.queue_depth, "Jobs queued or running at most; more are answered 429")
      ->capture_default_str();
  cmd->add_option("--preview-every", s.preview_every, "Live preview every N sampling steps (0: none)")
      ->capture_default_str();
  cmd->add_option("--http-threads", s.threads, "HTTP connections served at once (event streams hold one each)")->capture_default_str();
  cmd->add_option("--max-width", s.limits.max_width, "Largest width a request may ask for")->capture_default_str();
  cmd->add_option("--max-height", s.limits.max_height, "Largest height")->capture_default_str();
  cmd->add_option("--max-steps", s.limits.max_steps, "Most sampling steps")->capture_default_str();
  cmd->add_option("--max-frames", s.limits.max_frames, "Most video frames")->capture_default_str();
  cmd->add_option("--max-batch", s.limits.max_batch, "Most images per request")->capture_default_str();
  cmd->add_option("--max-body-mb", o->max_body_mb, "Request body limit in MiB")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "auto, f32, bf16 or f16")->capture_default_str();
  return {cmd, [o] { run_serve(*o); }};
}

}  // namespace genvis::cli
