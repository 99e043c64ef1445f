#include "jobs.h"

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "pipelines/common/output.h"
#include "pipelines/registry.h"
#include "pipelines/shipped_models.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <openssl/rand.h>

namespace genvis::server {

namespace fs = std::filesystem;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double unix_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// `hash`: the file's model hash ("" for folders).
CheckpointEntry entry_for(const std::string& path, std::string hash) {
  CheckpointEntry e;
  e.path = path;
  const fs::path p(path);
  e.name = p.has_stem() ? p.stem().string() : p.parent_path().filename().string();
  e.hash = std::move(hash);
  e.title = e.hash.empty() ? e.name : e.name + " [" + e.hash + "]";
  return e;
}

// The same file or folder (a link in --models-dir to the start model is the start model).
bool same_place(const std::string& a, const std::string& b) {
  std::error_code ec;
  const bool same = fs::equivalent(a, b, ec);
  return ec ? a == b : same;
}

}  // namespace

std::string unguessable_name(const std::string& stem, const std::string& extension) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw RuntimeError("no random bytes for a file name (OpenSSL RAND_bytes)");
  std::string hex;
  for (const unsigned char b : bytes) {
    hex += "0123456789abcdef"[b >> 4];
    hex += "0123456789abcdef"[b & 15];
  }
  return stem + "-" + hex + "." + extension;
}

ModelHost::ModelHost(ModelHostOptions options) : options_(std::move(options)) {
  if (options_.source.model.empty() && options_.source.unet.empty()) options_.source.model = pipelines::find_default_model();
  if (!options_.models_dir.empty() && !fs::is_directory(options_.models_dir))
    throw UsageError("--models-dir " + options_.models_dir + " is not a folder");
  const std::string start = options_.source.model.empty() ? options_.source.unet : options_.source.model;
  start_ = current_ = entry_for(start, hash_of(start));
  pipeline_ = pipelines::load_pipeline(options_.source);
  info_ = pipeline_->info();
  refresh();
}

void ModelHost::refresh() {
  std::vector<CheckpointEntry> found;
  if (!options_.models_dir.empty() && fs::is_directory(options_.models_dir)) {
    for (const auto& entry : fs::directory_iterator(options_.models_dir)) {
      const fs::path p = entry.path();
      const std::string ext = p.extension().string();
      const bool folder = entry.is_directory() && (fs::exists(p / "model_index.json") || fs::exists(p / "config.json"));
      const bool file = entry.is_regular_file() && (ext == ".safetensors" || ext == ".ckpt");
      if (folder || file) found.push_back(entry_for(p.string(), hash_of(p.string())));
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  std::lock_guard lock(meta_mutex_);
  listed_ = std::move(found);
}

std::string ModelHost::hash_of(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  // A checkpoint is hashed once (gigabytes each); again only when its size or time changes.
  const std::string stamp = std::to_string(fs::file_size(path, ec)) + ":" +
                            std::to_string(fs::last_write_time(path, ec).time_since_epoch().count());
  std::lock_guard lock(hash_mutex_);
  auto& [seen, hash] = hashes_[fs::absolute(path).string()];
  if (seen != stamp || hash.empty()) {
    hash = model_hash(path);
    seen = stamp;
  }
  return hash;
}

std::vector<CheckpointEntry> ModelHost::checkpoints() const {
  std::lock_guard lock(meta_mutex_);
  std::vector<CheckpointEntry> all = {start_};
  for (const auto& e : listed_)
    if (!same_place(e.path, start_.path)) all.push_back(e);
  return all;
}

CheckpointEntry ModelHost::current() const {
  std::lock_guard lock(meta_mutex_);
  return current_;
}

pipelines::PipelineInfo ModelHost::info() const {
  std::lock_guard lock(meta_mutex_);
  return info_;
}

void ModelHost::load(const std::string& wanted) {
  std::optional<CheckpointEntry> chosen;
  for (const auto& e : checkpoints())
    if (wanted == e.title || wanted == e.name || wanted == fs::path(e.path).filename().string()) chosen = e;
  if (!chosen) {
    std::string names;
    for (const auto& e : checkpoints()) names += (names.empty() ? "" : ", ") + e.title;
    throw UsageError("'sd_model_checkpoint': no checkpoint \"" + wanted + "\" (available: " + names + ")");
  }
  std::lock_guard lock(pipeline_mutex_);
  if (same_place(chosen->path, current().path)) return;
  pipelines::ModelSource source = options_.source;
  if (!same_place(chosen->path, start_.path)) source = {.model = chosen->path, .dtype = source.dtype, .device = source.device};
  pipeline_.reset();  // one resident model: free the old one first
  CheckpointEntry loaded = *chosen;
  try {
    pipeline_ = pipelines::load_pipeline(source);
  } catch (...) {
    pipeline_ = pipelines::load_pipeline(options_.source);  // back to the start model
    std::lock_guard meta(meta_mutex_);
    current_ = start_;
    info_ = pipeline_->info();
    throw;
  }
  std::lock_guard meta(meta_mutex_);
  current_ = loaded;
  info_ = pipeline_->info();
}

pipelines::Result ModelHost::generate(const pipelines::Request& r, const pipelines::Callbacks& c) {
  std::lock_guard lock(pipeline_mutex_);
  return pipeline_->generate(r, c);
}

bool finished_state(JobState s) { return s == JobState::Done || s == JobState::Failed || s == JobState::Cancelled; }

const char* state_name(JobState s) {
  switch (s) {
    case JobState::Queued: return "queued";
    case JobState::Running: return "running";
    case JobState::Done: return "done";
    case JobState::Failed: return "failed";
    case JobState::Cancelled: return "cancelled";
  }
  return "unknown";
}

JobStatus Job::status() const {
  std::lock_guard lock(mutex_);
  JobStatus s = status_;
  if (s.state == JobState::Running) s.elapsed = now_s() - started_;
  return s;
}

bool Job::finished() const { return finished_state(status().state); }

int64_t Job::wait_change(int64_t version, double timeout_s) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                    [&] { return version_ != version || finished_state(status_.state); });
  return version_;
}

void Job::wait() const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return finished_state(status_.state); });
}

std::string Job::preview_png() const {
  std::lock_guard lock(mutex_);
  return preview_;
}

std::shared_ptr<const JobOutput> Job::output() const {
  std::lock_guard lock(mutex_);
  return output_;
}

void Job::update(const std::function<void(JobStatus&)>& f) {
  {
    std::lock_guard lock(mutex_);
    f(status_);
    ++version_;
  }
  changed_.notify_all();
}

JobQueue::JobQueue(ModelHost& host, JobQueueOptions options) : host_(host), options_(std::move(options)) {
  if (options_.output_dir.empty()) throw UsageError("the job queue needs an output folder");
  fs::create_directories(options_.output_dir);
  worker_ = std::thread([this] { work(); });
}

JobQueue::~JobQueue() { shutdown(); }

std::shared_ptr<Job> JobQueue::submit(JobInput input) {
  std::lock_guard lock(mutex_);
  if (stopping_) throw RuntimeError("the server is shutting down");
  if (queue_.size() + (running_ ? 1 : 0) >= options_.depth)
    throw QueueFull(options_.depth, std::max(1, static_cast<int>(std::ceil(job_seconds_))));
  auto job = std::make_shared<Job>("job-" + std::to_string(next_id_++), std::move(input));
  job->status_.id = job->id();
  job->status_.created = unix_s();
  job->status_.queue_position = static_cast<int64_t>(queue_.size()) + (running_ ? 1 : 0);
  queue_.push_back(job);
  jobs_[job->id()] = job;
  wake_.notify_all();
  return job;
}

std::shared_ptr<Job> JobQueue::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

std::shared_ptr<Job> JobQueue::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

size_t JobQueue::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + (running_ ? 1 : 0);
}

void JobQueue::forget(const std::string& id) {
  std::lock_guard lock(mutex_);
  jobs_.erase(id);
}

void JobQueue::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
    for (auto& job : queue_) {
      job->cancel();
      job->update([](JobStatus& s) {
        s.state = JobState::Cancelled;
        s.error = "the server shut down";
      });
    }
    queue_.clear();
    if (running_) running_->cancel();
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void JobQueue::work() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
      running_ = job;
      for (size_t i = 0; i < queue_.size(); ++i)
        queue_[i]->update([&](JobStatus& s) { s.queue_position = static_cast<int64_t>(i) + 1; });
    }
    const double t0 = now_s();
    const auto terminal = run(*job);
    // The job leaves the queue before its waiters learn it finished, so a client that got its
    // answer sees a queue without it.
    std::lock_guard lock(mutex_);
    running_.reset();
    const double started = [&] {
      std::lock_guard job_lock(job->mutex_);
      return job->started_;
    }();
    job->update([&](JobStatus& s) {
      terminal(s);
      s.elapsed = started > 0 ? now_s() - started : 0;
    });
    const double took = now_s() - t0;
    job_seconds_ = job_seconds_ == 0 ? took : 0.7 * job_seconds_ + 0.3 * took;
    finished_order_.push_back(job->id());
    while (finished_order_.size() > options_.keep_finished) {
      jobs_.erase(finished_order_.front());
      finished_order_.pop_front();
    }
  }
}

std::function<void(JobStatus&)> JobQueue::run(Job& job) {
  if (job.cancel_requested()) return [](JobStatus& s) { s.state = JobState::Cancelled; };
  {
    std::lock_guard lock(job.mutex_);
    job.started_ = now_s();
  }
  job.update([](JobStatus& s) {
    s.state = JobState::Running;
    s.queue_position = 0;
  });
  const JobInput& in = job.input();
  const int64_t runs = std::max<int64_t>(1, in.n_iter);
  pipelines::Callbacks callbacks;
  int64_t run_index = 0;
  callbacks.cancelled = [&] { return job.cancel_requested(); };
  callbacks.on_step = [&](int64_t step, int64_t total) {
    job.update([&](JobStatus& s) {
      s.total = total * runs;
      s.step = run_index * total + step;
      const double elapsed = now_s() - job.started_;
      s.eta = s.step > 0 ? elapsed * static_cast<double>(s.total - s.step) / static_cast<double>(s.step) : 0;
    });
  };
  callbacks.preview_every = options_.preview_every;
  callbacks.on_preview = [&](int64_t, const at::Tensor& samples) {
    at::Tensor first = samples[0].to(at::kFloat).clamp(0, 1);
    if (first.dim() == 4) first = first.select(1, 0);  // a video: its first frame
    std::string png = pipelines::encode_sample_png(first, nullptr);
    {
      std::lock_guard lock(job.mutex_);
      job.preview_ = std::move(png);
    }
    job.update([](JobStatus& s) { ++s.preview_version; });
  };
  try {
    auto out = std::make_shared<JobOutput>();
    std::vector<pipelines::Result> results;
    for (run_index = 0; run_index < runs; ++run_index) {
      pipelines::Request r = in.request;
      r.seed = in.request.seed + static_cast<uint64_t>(run_index * in.request.batch);
      results.push_back(host_.generate(r, callbacks));
    }
    for (const auto& result : results) {
      for (int64_t i = 0; i < result.samples.size(0); ++i) {
        const io::GenerationParameters* p =
            result.parameters.empty() ? nullptr : &result.parameters[static_cast<size_t>(i)];
        if (p && p->seed) out->seeds.push_back(*p->seed);
        out->infotexts.push_back(p ? io::format_infotext(*p) : "");
        if (out->pngs.empty() && out->video_file.empty() && p) out->first = *p;
        if (!result.is_video()) out->pngs.push_back(pipelines::encode_sample_png(result.samples[i], p));
      }
      out->width = result.samples.size(-1);
      out->height = result.samples.size(-2);
    }
    if (results.front().is_video()) {
      // One file per job (the first sample; batches of videos are rare and big).
      const std::string name = unguessable_name(job.id(), in.video_format);
      const double fps = in.fps > 0 ? in.fps : host_.info().native_fps > 0 ? host_.info().native_fps : 16.0;
      pipelines::Result first = results.front();
      first.samples = first.samples.narrow(0, 0, 1);
      if (!first.parameters.empty()) first.parameters.resize(1);
      pipelines::write_result(first, {.path = (fs::path(options_.output_dir) / name).string(), .fps = fps});
      out->video_file = name;
      out->video_mime = in.video_format == "webp" ? "image/webp" : "video/mp4";
    }
    {
      std::lock_guard lock(job.mutex_);
      job.output_ = out;
    }
    return [](JobStatus& s) {
      s.state = JobState::Done;
      s.step = s.total;
      s.eta = 0;
    };
  } catch (const pipelines::Cancelled&) {
    return [](JobStatus& s) {
      s.state = JobState::Cancelled;
      s.error = "cancelled";
    };
  } catch (const Error& e) {
    // A request the model cannot serve (Usage) or a LoRA/embedding the prompt names (Load) is the
    // client's; anything else (Runtime) is the engine's.
    if (e.kind() == ErrorKind::Runtime) log_warn(std::string("job ") + job.id() + " failed: " + e.what());
    return [error = std::string(e.what()), status = e.kind() == ErrorKind::Runtime ? 500 : 400](JobStatus& s) {
      s.state = JobState::Failed;
      s.error = error;
      s.error_status = status;
    };
  } catch (const std::exception& e) {
    log_warn(std::string("job ") + job.id() + " failed: " + e.what());
    return [error = std::string(e.what())](JobStatus& s) {
      s.state = JobState::Failed;
      s.error = error;
      s.error_status = 500;
    };
  }
}

}  // namespace genvis::server
