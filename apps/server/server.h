// `genvis serve`: AUTOMATIC1111's /sdapi/v1, OpenAI's images API and genvis' job API over one
// resident model, plus the web UI at "/" (docs/server.md).
//
//   Server server(options);          // loads the model, binds the port (0: any free one)
//   std::thread t([&] { server.run(); });
//   ... http://127.0.0.1:<server.port()>/ ...
//   server.stop();  t.join();
#pragma once
#include "jobs.h"
#include "requests.h"

#include <memory>
#include <string>

namespace genvis::server {

struct ServerOptions {
  ModelHostOptions model;
  std::string host = "127.0.0.1";
  int port = 7860;                   // 0: any free port (tests)
  std::string api_key;               // "": no authentication
  std::string cors_origin;           // "": no CORS headers
  std::string lora_dir, embeddings_dir;
  std::string output_dir;            // "": a temporary folder removed at exit
  size_t queue_depth = 16;
  int64_t preview_every = 5;
  int threads = 16;
  Limits limits;
};

class Server {
public:
  explicit Server(ServerOptions options);  // loads the model and binds; UsageError/LoadError
  ~Server();
  int port() const;
  // Serves until stop(); returns after in-flight requests end.
  void run();
  // Stops taking requests, cancels queued jobs and the running one (within one step). Safe to
  // call from any thread, more than once.
  void stop();

  struct State;

private:
  std::unique_ptr<State> state_;
};

}  // namespace genvis::server
