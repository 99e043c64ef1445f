// genvis serve over real HTTP on 127.0.0.1 with the built-in model: the A1111 client sequence
// (txt2img -> png-info -> progress -> interrupt), OpenAI's images routes, jobs with events and
// cancel, the limits, authentication, CORS, and a SIGTERM shutdown of the CLI server.
#include "core/error.h"
#include "io/image.h"
#include "io/infotext.h"
#include "pipelines/shipped_models.h"
#include "server.h"
#include "support/test_support.h"
#include "train/video_recipe.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <httplib.h>
#include <random>
#include <thread>

namespace genvis {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string default_model() {
  try {
    return pipelines::find_default_model();
  } catch (const Error&) {
    return "";
  }
}

// A server on a free port in this process, stopped at scope exit.
struct Running {
  explicit Running(server::ServerOptions o) : server([&] {
    o.port = 0;
    o.model.source.model = default_model();
    return o;
  }()) {
    thread = std::thread([this] { server.run(); });
    client.set_read_timeout(120, 0);
    for (int i = 0; i < 100 && !client.Get("/genvis/v1/info"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ~Running() {
    server.stop();
    thread.join();
  }
  server::Server server;
  std::thread thread;
  httplib::Client client{"127.0.0.1", server.port()};
};

json body_of(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no answer";
  return r ? json::parse(r->body) : json();
}

httplib::Result post_json(httplib::Client& c, const std::string& path, const json& body) {
  return c.Post(path.c_str(), body.dump(), "application/json");
}

std::string b64_decode(const std::string& s) { return server::base64_decode(s, "test"); }

class ServerTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (default_model().empty()) GTEST_SKIP() << "the built-in model is not in models/";
  }
};

TEST_F(ServerTest, A1111Txt2ImgWritesTheCliPngAndPngInfoReadsIt) {
  Running s({});
  const json req = {{"prompt", "grinning face"}, {"seed", 11}, {"steps", 3}, {"sampler_name", "Euler a"},
                    {"batch_size", 2}, {"restore_faces", false}};  // unknown A1111 keys are ignored
  const auto r = post_json(s.client, "/sdapi/v1/txt2img", req);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json body = json::parse(r->body);
  ASSERT_EQ(body["images"].size(), 2u);
  const json info = json::parse(body["info"].get<std::string>());
  EXPECT_EQ(info["all_seeds"], json({11, 12}));
  EXPECT_EQ(info["sampler_name"], "Euler a");
  EXPECT_EQ(info["steps"], 3);

  // The same settings through `genvis generate`: identical infotext and pixels.
  test::TempDir dir;
  const std::string out = dir.file("cli.png");
  const auto cli = test::run_command(std::string(GENVIS_CLI) + " -q generate -p 'grinning face' --seed 11 --steps 3 "
                                     "--sampler euler_a --batch 2 -o " + test::shell_quote(out));
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  for (int i = 0; i < 2; ++i) {
    const std::string png = b64_decode(body["images"][i]);
    const std::string cli_png = test::read_bytes(dir.file("cli-" + std::to_string(i) + ".png"));
    const auto server_text = io::decode_png_text(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "server");
    const auto cli_text = io::decode_png_text(reinterpret_cast<const uint8_t*>(cli_png.data()), cli_png.size(), "cli");
    EXPECT_EQ(server_text, cli_text);
    EXPECT_EQ(info["infotexts"][i], cli_text.at(0).second);
    const auto a = io::decode_png(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "server");
    const auto b = io::decode_png(reinterpret_cast<const uint8_t*>(cli_png.data()), cli_png.size(), "cli");
    EXPECT_EQ(a.pixels, b.pixels) << "image " << i;
  }

  // png-info gives back the text and its fields.
  const json pnginfo = body_of(post_json(s.client, "/sdapi/v1/png-info", {{"image", body["images"][0]}}));
  EXPECT_EQ(pnginfo["info"], info["infotexts"][0]);
  EXPECT_EQ(pnginfo["parameters"]["Prompt"], "grinning face");
  EXPECT_EQ(pnginfo["parameters"]["Seed"], 11);
  EXPECT_EQ(pnginfo["parameters"]["Steps"], 3);

  // Listings.
  const json samplers = body_of(s.client.Get("/sdapi/v1/samplers"));
  ASSERT_FALSE(samplers.empty());
  EXPECT_TRUE(std::any_of(samplers.begin(), samplers.end(), [](const json& x) { return x["name"] == "DPM++ 2M"; }));
  const json models = body_of(s.client.Get("/sdapi/v1/sd-models"));
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(body_of(s.client.Get("/sdapi/v1/options"))["sd_model_checkpoint"], models[0]["title"]);
  const auto bad_model = post_json(s.client, "/sdapi/v1/options", {{"sd_model_checkpoint", "../../etc/passwd"}});
  EXPECT_EQ(bad_model->status, 400);
  EXPECT_EQ(json::parse(bad_model->body)["field"], "sd_model_checkpoint");
  EXPECT_EQ(body_of(s.client.Get("/sdapi/v1/schedulers")).size(), 4u);
}

TEST_F(ServerTest, ProgressShowsARunningJobAndInterruptStopsIt) {
  Running s({.preview_every = 1});
  // A long request in the background (the A1111 client waits on it).
  std::thread caller([&] {
    httplib::Client c("127.0.0.1", s.server.port());
    c.set_read_timeout(300, 0);
    const auto r = post_json(c, "/sdapi/v1/txt2img", {{"prompt", "a cat"}, {"steps", 150}, {"batch_size", 8}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_TRUE(json::parse(r->body)["images"].empty());  // interrupted before the end
  });
  json progress;
  for (int i = 0; i < 1000; ++i) {
    progress = body_of(s.client.Get("/sdapi/v1/progress"));
    if (progress["state"]["sampling_step"].get<int64_t>() >= 2 && !progress["current_image"].is_null()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(progress["progress"].get<double>(), 0);
  EXPECT_LT(progress["progress"].get<double>(), 1);
  EXPECT_EQ(progress["state"]["sampling_steps"], 150);
  ASSERT_TRUE(progress["current_image"].is_string());
  const std::string preview = b64_decode(progress["current_image"]);
  EXPECT_EQ(io::decode_png(reinterpret_cast<const uint8_t*>(preview.data()), preview.size(), "preview").width, 32);
  EXPECT_EQ(s.client.Post("/sdapi/v1/interrupt")->status, 200);
  caller.join();
  EXPECT_EQ(body_of(s.client.Get("/sdapi/v1/progress"))["state"]["job_count"], 0);
}

TEST_F(ServerTest, OpenAIImagesGenerationsAndEdits) {
  Running s({});
  const json gen = body_of(post_json(s.client, "/v1/images/generations",
                                     {{"prompt", "smiling face"}, {"n", 2}, {"size", "32x32"}, {"model", "dall-e-2"}}));
  ASSERT_EQ(gen["data"].size(), 2u) << gen.dump();
  EXPECT_GT(gen["created"].get<int64_t>(), 1700000000);
  const std::string png = b64_decode(gen["data"][0]["b64_json"]);
  EXPECT_EQ(io::decode_png(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "png").width, 32);

  const json urls = body_of(post_json(s.client, "/v1/images/generations",
                                      {{"prompt", "smiling face"}, {"response_format", "url"}}));
  const std::string url = urls["data"][0]["url"];
  const std::string path = url.substr(url.find("/genvis/v1/files/"));
  const auto file = s.client.Get(path.c_str());
  ASSERT_EQ(file->status, 200);
  EXPECT_EQ(file->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(s.client.Get("/genvis/v1/files/nothing.png")->status, 404);

  // Errors in OpenAI's shape, naming the parameter.
  const auto missing = post_json(s.client, "/v1/images/generations", {{"n", 1}});
  EXPECT_EQ(missing->status, 400);
  EXPECT_EQ(json::parse(missing->body)["error"]["param"], "prompt");
  EXPECT_EQ(json::parse(missing->body)["error"]["type"], "invalid_request_error");
  const auto bad_size = post_json(s.client, "/v1/images/generations", {{"prompt", "x"}, {"size", "big"}});
  EXPECT_EQ(json::parse(bad_size->body)["error"]["param"], "size");

  // Edits: the image's transparent part (the mask's) is repainted, the rest kept.
  io::Image image = io::Image::blank(32, 32, 3, 8, 200);
  io::Image mask = io::Image::blank(32, 32, 4, 8, 255);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 32; ++x) mask.at(x, y, 3) = 0;
  httplib::MultipartFormDataItems items = {{"image", io::encode_png(image), "image.png", "image/png"},
                                           {"mask", io::encode_png(mask), "mask.png", "image/png"},
                                           {"prompt", "grinning face", "", ""},
                                           {"n", "1", "", ""}};
  const auto edit = s.client.Post("/v1/images/edits", items);
  ASSERT_EQ(edit->status, 200) << edit->body;
  const std::string edited = b64_decode(json::parse(edit->body)["data"][0]["b64_json"]);
  const auto out = io::decode_png(reinterpret_cast<const uint8_t*>(edited.data()), edited.size(), "edit");
  double kept = 0, repainted = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) (y < 16 ? repainted : kept) += std::abs(int(out.at(x, y, 0)) - 200);
  // (The unmasked half goes through the VAE; the masked half is drawn anew.)
  EXPECT_GT(repainted / 512, kept / 512 + 10) << "the masked (transparent) half is repainted, the rest kept";
  EXPECT_EQ(json::parse(s.client.Get("/v1/models")->body)["data"].size(), 1u);
}

// Reads an event stream to its end: (event, data) pairs.
std::vector<std::pair<std::string, json>> read_events(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(300, 0);
  std::string buffer;
  std::vector<std::pair<std::string, json>> events;
  c.Get(path.c_str(), [&](const char* data, size_t n) {
    buffer.append(data, n);
    for (size_t end; (end = buffer.find("\n\n")) != std::string::npos; buffer.erase(0, end + 2)) {
      const std::string frame = buffer.substr(0, end);
      if (frame.rfind("event: ", 0) != 0) continue;
      const size_t nl = frame.find('\n');
      events.emplace_back(frame.substr(7, nl - 7), json::parse(frame.substr(nl + 7)));
    }
    return true;
  });
  return events;
}

TEST_F(ServerTest, JobsReportProgressOverEventsAndCancel) {
  Running s({.preview_every = 2});
  const auto created = post_json(s.client, "/genvis/v1/jobs", {{"prompt", "cat face"}, {"steps", 6}, {"seed", 3}});
  ASSERT_EQ(created->status, 202) << created->body;
  const std::string id = json::parse(created->body)["id"];
  const auto events = read_events(s.server.port(), "/genvis/v1/jobs/" + id + "/events");
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back().first, "done");
  EXPECT_EQ(events.back().second["images"].size(), 1u);
  EXPECT_EQ(events.back().second["seeds"], json({3}));
  bool saw_preview = false;
  int64_t last_step = -1;
  for (const auto& [name, data] : events)
    if (name == "progress") {
      EXPECT_GE(data["step"].get<int64_t>(), last_step);
      last_step = data["step"];
      saw_preview |= data.contains("preview");
    }
  EXPECT_TRUE(saw_preview);
  const json status = body_of(s.client.Get(("/genvis/v1/jobs/" + id).c_str()));
  EXPECT_EQ(status["state"], "done");
  EXPECT_EQ(status["step"], 6);
  EXPECT_EQ(body_of(s.client.Get(("/genvis/v1/jobs/" + id + "/result").c_str()))["images"].size(), 1u);

  // Cancel a long job while it runs: it stops within a step.
  const std::string long_id = json::parse(post_json(s.client, "/genvis/v1/jobs",
                                                    {{"prompt", "dog"}, {"steps", 150}, {"batch_size", 8}})->body)["id"];
  const std::string path = "/genvis/v1/jobs/" + long_id;
  for (int i = 0; i < 1000 && body_of(s.client.Get(path.c_str()))["step"].get<int64_t>() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(s.client.Delete(path.c_str())->status, 200);
  json st;
  for (int i = 0; i < 500; ++i) {
    st = body_of(s.client.Get(path.c_str()));
    if (st["state"] == "cancelled") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(st["state"], "cancelled");
  EXPECT_LT(st["step"].get<int64_t>(), 150 * 1);
  EXPECT_EQ(s.client.Get((path + "/result").c_str())->status, 409);
  EXPECT_EQ(s.client.Get("/genvis/v1/jobs/job-999999")->status, 404);
}

TEST_F(ServerTest, BadRequestsAnswer4xxNamingTheField) {
  Running s({.queue_depth = 1, .limits = {.max_width = 256, .max_body_bytes = 1 << 20}});
  const auto check = [&](const std::string& path, const std::string& body, int status, const std::string& field) {
    const auto r = s.client.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, status) << body << " -> " << r->body;
    const json e = json::parse(r->body);
    if (!field.empty()) {
      EXPECT_EQ(path.rfind("/sdapi", 0) == 0 ? e["field"] : e["error"]["field"], field) << r->body;
    }
  };
  check("/sdapi/v1/txt2img", "{\"prompt\": ", 400, "");
  check("/sdapi/v1/txt2img", "[1, 2]", 400, "");
  check("/sdapi/v1/txt2img", R"({"prompt": "x", "steps": 1e400})", 400, "");  // out of double's range
  check("/sdapi/v1/txt2img", R"({"prompt": "x", "steps": "many"})", 400, "steps");
  check("/sdapi/v1/txt2img", R"({"prompt": "x", "steps": 1000})", 400, "steps");
  check("/sdapi/v1/txt2img", R"({"prompt": "x", "width": 100000})", 400, "width");
  check("/sdapi/v1/txt2img", R"({"prompt": "x", "width": 36, "height": 32})", 400, "width");
  check("/sdapi/v1/txt2img", R"({"prompt": "x", "sampler_name": "Nope"})", 400, "sampler_name");
  check("/sdapi/v1/txt2img", R"({"prompt": "x", "batch_size": 0})", 400, "batch_size");
  check("/sdapi/v1/txt2img", R"({"prompt": "x <lora:../../secret:1>"})", 400, "prompt");
  check("/sdapi/v1/img2img", R"({"prompt": "x", "init_images": ["not base64!"]})", 400, "init_images");
  check("/sdapi/v1/img2img", R"({"prompt": "x", "init_images": ["aGVsbG8="]})", 400, "init_images");
  check("/genvis/v1/jobs", R"({"prompt": "x", "frames": 9})", 400, "frames");
  check("/genvis/v1/jobs", R"({"prompt": "x", "cfg_scale": "high"})", 400, "cfg_scale");
  // A PNG header claiming a huge image is refused before decoding.
  std::string huge = io::encode_png(io::Image::blank(2, 2, 3));
  huge[16] = huge[17] = 0x7f;
  check("/sdapi/v1/png-info", R"({"image": 5})", 400, "image");
  check("/sdapi/v1/png-info", R"({"image": "aGVsbG8="})", 400, "image");
  check("/sdapi/v1/img2img", json({{"prompt", "x"}, {"init_images", {server::base64_encode(huge)}}}).dump(), 413,
        "init_images");
  // Over the body limit.
  EXPECT_EQ(s.client.Post("/sdapi/v1/txt2img", std::string(2 << 20, ' '), "application/json")->status, 413);
  EXPECT_EQ(s.client.Get("/nowhere")->status, 404);

  // A full queue answers 429 with Retry-After.
  const std::string id = json::parse(post_json(s.client, "/genvis/v1/jobs",
                                               {{"prompt", "dog"}, {"steps", 150}, {"batch_size", 8}})->body)["id"];
  const auto full = post_json(s.client, "/genvis/v1/jobs", {{"prompt", "cat"}});
  EXPECT_EQ(full->status, 429);
  EXPECT_GE(std::atoi(full->get_header_value("Retry-After").c_str()), 1);
  s.client.Delete(("/genvis/v1/jobs/" + id).c_str());
  // The server is healthy afterwards.
  EXPECT_EQ(s.client.Get("/genvis/v1/info")->status, 200);
}

TEST_F(ServerTest, ClientsThatGoAwayLeaveTheServerHealthy) {
  Running s({});
  {
    // A synchronous request whose client stops waiting.
    httplib::Client impatient("127.0.0.1", s.server.port());
    impatient.set_read_timeout(0, 200000);
    EXPECT_FALSE(post_json(impatient, "/sdapi/v1/txt2img", {{"prompt", "x"}, {"steps", 60}, {"batch_size", 4}}));
  }
  {
    // An event stream closed after its first event.
    const std::string id = json::parse(post_json(s.client, "/genvis/v1/jobs", {{"prompt", "y"}, {"steps", 40}})->body)["id"];
    httplib::Client c("127.0.0.1", s.server.port());
    int frames = 0;
    c.Get(("/genvis/v1/jobs/" + id + "/events").c_str(), [&](const char*, size_t) { return ++frames < 1; });
    EXPECT_EQ(frames, 1);
  }
  // Both jobs run to their end and the next request is served.
  const auto r = post_json(s.client, "/sdapi/v1/txt2img", {{"prompt", "grinning face"}, {"steps", 2}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["images"].size(), 1u);
}

// Mutated bodies (bytes flipped, cut, fields given other types) on every POST route: each answer
// is 2xx or a 4xx with a JSON error body, and the server keeps serving.
TEST_F(ServerTest, MutatedRequestsGetJsonAnswers) {
  Running s({.limits = {.max_width = 64, .max_height = 64, .max_steps = 3, .max_batch = 2, .max_body_bytes = 1 << 20}});
  const std::string png = server::base64_encode(io::encode_png(io::Image::blank(32, 32, 3, 8, 90)));
  const std::vector<std::pair<std::string, json>> seeds = {
      {"/sdapi/v1/txt2img", {{"prompt", "a"}, {"steps", 2}, {"sampler_name", "Euler a"}, {"width", 32}, {"seed", 1}}},
      {"/sdapi/v1/img2img", {{"prompt", "b"}, {"steps", 2}, {"init_images", {png}}, {"mask", png}, {"denoising_strength", 0.5}}},
      {"/sdapi/v1/png-info", {{"image", png}}},
      {"/sdapi/v1/options", {{"CLIP_stop_at_last_layers", 2}}},
      {"/v1/images/generations", {{"prompt", "c"}, {"n", 1}, {"size", "32x32"}}},
      {"/genvis/v1/jobs", {{"prompt", "d"}, {"steps", 2}, {"extras", {{"clip_skip", 2}}}}}};
  const std::vector<json> odd_values = {nullptr, true, -1, 0, 1e300, "", "x", json::array(), json::object(), 3.5, 99999};
  std::mt19937 rng(7);
  int answered = 0;
  for (int i = 0; i < 240; ++i) {
    const auto& [path, seed] = seeds[static_cast<size_t>(i) % seeds.size()];
    json body = seed;
    std::string text;
    switch (rng() % 3) {
      case 0: {  // a field gets another type or value
        auto it = body.begin();
        std::advance(it, static_cast<long>(rng() % body.size()));
        *it = odd_values[rng() % odd_values.size()];
        text = body.dump();
        break;
      }
      case 1:  // cut short
        text = body.dump();
        text.resize(rng() % text.size());
        break;
      default:  // bytes flipped
        text = body.dump();
        for (int k = 0; k < 3; ++k) text[rng() % text.size()] = static_cast<char>(rng() % 256);
    }
    const auto r = s.client.Post(path.c_str(), text, "application/json");
    ASSERT_TRUE(r) << path << " " << text;
    EXPECT_TRUE((r->status >= 200 && r->status < 300) || (r->status >= 400 && r->status < 500)) << r->status << " " << path << " " << text;
    if (r->status >= 400) {
      EXPECT_TRUE(json::accept(r->body)) << r->body;
    }
    ++answered;
  }
  // Multipart edits with parts missing, empty or not images.
  const std::vector<httplib::MultipartFormDataItems> forms = {
      {},
      {{"prompt", "x", "", ""}},
      {{"image", "not a png", "a.png", "image/png"}, {"prompt", "x", "", ""}},
      {{"image", io::encode_png(io::Image::blank(32, 32, 3)), "a.png", "image/png"}, {"prompt", "", "", ""}},
      {{"image", io::encode_png(io::Image::blank(32, 32, 3)), "a.png", "image/png"}, {"prompt", "x", "", ""},
       {"mask", "garbage", "m.png", "image/png"}},
      {{"image", io::encode_png(io::Image::blank(32, 32, 3)), "a.png", "image/png"}, {"prompt", "x", "", ""},
       {"n", "many", "", ""}}};
  for (const auto& form : forms) {
    const auto r = s.client.Post("/v1/images/edits", form);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_TRUE(json::parse(r->body)["error"]["message"].is_string());
  }
  EXPECT_EQ(s.client.Post("/v1/images/edits", "{}", "application/json")->status, 415);
  EXPECT_EQ(answered, 240);
  EXPECT_EQ(s.client.Get("/genvis/v1/info")->status, 200);
}

// A video model trained at toy size (a few steps of the video recipe), beside the built-in image
// model in --models-dir: switching checkpoints, a video job whose file the server serves, and the
// synchronous routes pointing to the job API for videos.
TEST_F(ServerTest, VideoJobsAndCheckpointSwitching) {
  test::TempDir dir;
  json recipe = json::parse(R"({
    "seed": 5,
    "dataset": {"name": "shapes-video", "resolution": 16, "size": 16},
    "buckets": [{"frames": 5, "height": 16, "width": 16}],
    "tokenizer": {"vocab_size": 600},
    "vae": {"config": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [true]},
            "batch_size": 4, "train": {"steps": 2, "lr": 1e-3, "warmup_steps": 1}},
    "transformer": {"config": {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 8,
                               "ffn_dim": 32, "freq_dim": 16, "num_layers": 1}},
    "text_encoder": {"config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                "num_attention_heads": 2}},
    "dit": {"batch_size": 4, "train": {"steps": 2, "lr": 1e-3, "warmup_steps": 1}}
  })");
  const auto trained = train::run_video_recipe(train::VideoRecipeConfig::from_json(recipe),
                                               {.out_dir = dir.file("run")});
  const fs::path models = dir.file("models");
  fs::create_directories(models);
  fs::create_directory_symlink(fs::absolute(trained.model_dir), models / "toy-video");
  fs::create_directory_symlink(fs::absolute(default_model()), models / "genvis-emoji-32");

  Running s({.model = {.models_dir = models.string()}});
  const json listed = body_of(s.client.Get("/sdapi/v1/sd-models"));
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  const auto switched = post_json(s.client, "/sdapi/v1/options", {{"sd_model_checkpoint", "toy-video"}});
  ASSERT_EQ(switched->status, 200) << switched->body;
  const json info = body_of(s.client.Get("/genvis/v1/info"));
  EXPECT_TRUE(info["model"]["supports"]["video"].get<bool>()) << info.dump();
  EXPECT_EQ(body_of(s.client.Get("/sdapi/v1/options"))["sd_model_checkpoint"], "toy-video");

  for (const std::string format : {"mp4", "webp"}) {
    const auto created = post_json(s.client, "/genvis/v1/jobs",
                                   {{"prompt", "a red circle moving right"}, {"frames", 5}, {"video_format", format}});
    ASSERT_EQ(created->status, 202) << created->body;
    const auto events = read_events(s.server.port(), "/genvis/v1/jobs/" + json::parse(created->body)["id"].get<std::string>() + "/events");
    ASSERT_FALSE(events.empty());
    ASSERT_EQ(events.back().first, "done") << events.back().second.dump();
    const json video = events.back().second["video"];
    EXPECT_EQ(video["mime"], format == "mp4" ? "video/mp4" : "image/webp");
    const auto file = s.client.Get(video["url"].get<std::string>().c_str());
    ASSERT_EQ(file->status, 200);
    EXPECT_EQ(file->body.substr(format == "mp4" ? 4 : 8, 4), format == "mp4" ? "ftyp" : "WEBP");
  }
  // A1111's synchronous route makes images; for a video it points to the job API.
  const auto sync = post_json(s.client, "/sdapi/v1/txt2img", {{"prompt", "x"}, {"frames", 5}});
  EXPECT_EQ(sync->status, 400);
  EXPECT_NE(json::parse(sync->body)["detail"].get<std::string>().find("/genvis/v1/jobs"), std::string::npos);
  // Back to the image model.
  EXPECT_EQ(post_json(s.client, "/sdapi/v1/options", {{"sd_model_checkpoint", "genvis-emoji-32"}})->status, 200);
  EXPECT_FALSE(body_of(s.client.Get("/genvis/v1/info"))["model"]["supports"]["video"].get<bool>());
}

TEST_F(ServerTest, ApiKeyAndCors) {
  Running s({.api_key = "s3cret", .cors_origin = "http://localhost:3000"});
  const auto no_key = s.client.Get("/sdapi/v1/sd-models");
  EXPECT_EQ(no_key->status, 401);
  EXPECT_EQ(s.client.Get("/v1/models")->status, 401);
  EXPECT_EQ(json::parse(s.client.Get("/v1/models")->body)["error"]["type"], "authentication_error");
  const auto ui = s.client.Get("/");
  EXPECT_EQ(ui->status, 200);
  EXPECT_NE(ui->body.find("<html"), std::string::npos);
  EXPECT_EQ(ui->get_header_value("Access-Control-Allow-Origin"), "http://localhost:3000");
  s.client.set_bearer_token_auth("wrong");
  EXPECT_EQ(s.client.Get("/sdapi/v1/sd-models")->status, 401);
  s.client.set_bearer_token_auth("s3cret");
  EXPECT_EQ(s.client.Get("/sdapi/v1/sd-models")->status, 200);
  const auto preflight = s.client.Options("/sdapi/v1/txt2img");
  EXPECT_EQ(preflight->status, 204);

  Running plain({});
  EXPECT_EQ(plain.client.Get("/sdapi/v1/sd-models")->status, 200);
  EXPECT_FALSE(plain.client.Get("/sdapi/v1/sd-models")->has_header("Access-Control-Allow-Origin"));
}

// Whether a process has ended (a zombie that nobody reaped counts as ended).
bool process_ended(int pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

TEST_F(ServerTest, CliServerStopsOnSigterm) {
  if (!fs::exists(GENVIS_CLI)) GTEST_SKIP() << "the genvis binary is not built";
  test::TempDir dir;
  const std::string log = dir.file("serve.log");
  const std::string pid_file = dir.file("pid");
  // Started in the background; its log names the port.
  ASSERT_EQ(std::system((std::string(GENVIS_CLI) + " serve --port 0 > " + test::shell_quote(log) + " 2>&1 & echo $! > " +
                         test::shell_quote(pid_file)).c_str()),
            0);
  const int pid = std::stoi(test::read_bytes(pid_file));
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string text = test::read_bytes(log);
    const size_t at = text.find("http://127.0.0.1:");
    if (at != std::string::npos) port = std::atoi(text.c_str() + at + 17);
  }
  ASSERT_GT(port, 0) << test::read_bytes(log);
  httplib::Client c("127.0.0.1", port);
  const auto created = c.Post("/genvis/v1/jobs", json({{"prompt", "dog"}, {"steps", 150}, {"batch_size", 8}}).dump(),
                              "application/json");
  ASSERT_EQ(created->status, 202);
  for (int i = 0; i < 500; ++i) {
    const auto st = c.Get(("/genvis/v1/jobs/" + json::parse(created->body)["id"].get<std::string>()).c_str());
    if (json::parse(st->body)["step"].get<int64_t>() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  bool exited = false;
  for (int i = 0; i < 400 && !exited; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    exited = process_ended(pid);
  }
  EXPECT_TRUE(exited) << "still running 10 s after SIGTERM\n" << test::read_bytes(log);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10);
  EXPECT_NE(test::read_bytes(log).find("stopped"), std::string::npos) << test::read_bytes(log);
  if (!exited) kill(pid, SIGKILL);
}

}  // namespace
}  // namespace genvis
