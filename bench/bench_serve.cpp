// Load test of `genvis serve` (in-process, on 127.0.0.1): C clients each send R small txt2img
// requests to the built-in model at once; prints JSON with failures, latency percentiles, the
// throughput against one client's service time measured in the same run, and the resident memory
// after a warm-up, halfway and at the end (flat memory: no growth across requests).
//
//   build/bench/bench_serve [--clients 8] [--requests 50] [--steps 4] [--route a1111|openai]
#include "args.h"
#include "measure.h"
#include "pipelines/shipped_models.h"
#include "server.h"

#include <atomic>
#include <httplib.h>
#include <iostream>
#include <mutex>
#include <thread>

using namespace genvis;
using nlohmann::json;

int main(int argc, char** argv) {
  int64_t clients = 8, requests = 50, steps = 4;
  std::string route = "a1111";
  bench::Args args(argc, argv, "bench_serve", "[--clients N] [--requests N] [--steps N] [--route a1111|openai]");
  while (args.next()) {
    if (args.is("--clients")) clients = args.count();
    else if (args.is("--requests")) requests = args.count();
    else if (args.is("--steps")) steps = args.count();
    else if (args.is("--route")) route = args.text();
    else args.unknown();
  }
  if (clients < 1 || requests < 1 || steps < 1) args.fail("--clients, --requests and --steps must be >= 1");
  if (route != "a1111" && route != "openai") args.fail("--route takes a1111 or openai, got " + route);
  server::ServerOptions o;
  o.port = 0;
  o.model.source.model = pipelines::find_default_model();
  o.queue_depth = static_cast<size_t>(clients) + 1;
  o.threads = static_cast<int>(clients) + 4;
  server::Server srv(o);
  std::thread serving([&] { srv.run(); });

  const std::string path = route == "a1111" ? "/sdapi/v1/txt2img" : "/v1/images/generations";
  const auto body = [&](int64_t i) {
    return route == "a1111" ? json({{"prompt", "grinning face"}, {"steps", steps}, {"seed", i}}).dump()
                            : json({{"prompt", "grinning face"}}).dump();
  };
  // Warm-up: one request, so the first-call costs do not count.
  {
    httplib::Client c("127.0.0.1", srv.port());
    c.set_read_timeout(300, 0);
    c.Post(path.c_str(), body(0), "application/json");
  }
  // The peer in the same run: one client alone, request after request (the service time).
  double serial_s = 0;
  {
    httplib::Client c("127.0.0.1", srv.port());
    c.set_read_timeout(300, 0);
    const double start = bench::now_s();
    for (int i = 0; i < 10; ++i) c.Post(path.c_str(), body(1000000 + i), "application/json");
    serial_s = (bench::now_s() - start) / 10;
  }
  const double rss_warm = bench::status_mb("VmRSS:");
  std::atomic<int64_t> failures{0}, done{0};
  std::atomic<double> rss_half{0};
  std::mutex mutex;
  std::vector<double> latencies;
  const double t0 = bench::now_s();
  std::vector<std::thread> threads;
  for (int64_t c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", srv.port());
      client.set_read_timeout(600, 0);
      for (int64_t r = 0; r < requests; ++r) {
        const double start = bench::now_s();
        const auto res = client.Post(path.c_str(), body(c * requests + r + 1), "application/json");
        const double took = bench::now_s() - start;
        if (!res || res->status != 200 || json::parse(res->body).value("images", json::array()).size() +
                                                  json::parse(res->body).value("data", json::array()).size() != 1)
          ++failures;
        {
          std::lock_guard lock(mutex);
          latencies.push_back(took);
        }
        if (++done == clients * requests / 2) rss_half = bench::status_mb("VmRSS:");
      }
    });
  for (auto& t : threads) t.join();
  const double wall = bench::now_s() - t0;
  const double rss_end = bench::status_mb("VmRSS:");
  srv.stop();
  serving.join();

  std::sort(latencies.begin(), latencies.end());
  const auto pct = [&](double p) {
    return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p / 100 * static_cast<double>(latencies.size())))];
  };
  const json out = {{"bench", "serve"},
                    {"route", path},
                    {"clients", clients},
                    {"requests_per_client", requests},
                    {"steps", route == "a1111" ? json(steps) : json("model default")},
                    {"requests", latencies.size()},
                    {"failures", failures.load()},
                    {"wall_s", wall},
                    {"requests_per_s", static_cast<double>(latencies.size()) / wall},
                    {"single_client_latency_s", serial_s},
                    // Queue and HTTP overhead under load: time per request with C clients over the
                    // service time of one client alone (1.0 = none).
                    {"per_request_time_over_single_client", wall / static_cast<double>(latencies.size()) / serial_s},
                    {"latency_s", {{"p50", pct(50)}, {"p90", pct(90)}, {"p99", pct(99)}, {"max", latencies.back()}}},
                    {"rss_mb", {{"after_warmup", rss_warm}, {"half", rss_half.load()}, {"end", rss_end}}},
                    {"load_average", bench::load_average()}};
  std::cout << out.dump(2) << "\n";
  return failures == 0 ? 0 : 1;
}
