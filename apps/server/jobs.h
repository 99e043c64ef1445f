// The server's one resident model and its first-in-first-out job queue: one worker thread runs
// one job at a time; every route (A1111, OpenAI, the job API) submits here.
//
//   ModelHost host(options);                       // loads the model
//   JobQueue queue(host, {.depth = 16});
//   std::shared_ptr<Job> job = queue.submit(std::move(input));   // QueueFull when depth is reached
//   job->wait();  JobStatus s = job->status();
#pragma once
#include "pipelines/pipeline.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace genvis::server {

// Where checkpoints come from: the model given at start, or an entry of models_dir by name.
struct ModelHostOptions {
  pipelines::ModelSource source;  // source.model empty: the built-in default model
  std::string models_dir;         // "" : only the start model
};

struct CheckpointEntry {
  std::string title, name, path;  // title "name [hash]" as A1111 lists it; name: file stem
  std::string hash;               // first 10 hex digits of the file's SHA-256 ("" for folders)
};

// The resident pipeline. generate() runs on the queue's worker; load() waits for it. info() and
// current() never wait for a generation.
class ModelHost {
public:
  explicit ModelHost(ModelHostOptions options);
  // Checkpoints of models_dir (rescanned by refresh()), the start model first.
  std::vector<CheckpointEntry> checkpoints() const;
  void refresh();
  // Loads the checkpoint with this title, name or file name (one of checkpoints()); UsageError
  // naming 'sd_model_checkpoint' otherwise: no path is taken from a request.
  void load(const std::string& title_or_name);
  CheckpointEntry current() const;
  pipelines::PipelineInfo info() const;
  pipelines::Result generate(const pipelines::Request& r, const pipelines::Callbacks& c);

private:
  // A file's model hash, from hashes_ unless the file changed; "" for a folder.
  std::string hash_of(const std::string& path);
  ModelHostOptions options_;
  std::mutex hash_mutex_;
  std::map<std::string, std::pair<std::string, std::string>> hashes_;  // path -> (size:mtime, hash)
  std::unique_ptr<pipelines::Pipeline> pipeline_;  // guarded by pipeline_mutex_
  std::mutex pipeline_mutex_;
  mutable std::mutex meta_mutex_;  // guards the fields below
  std::vector<CheckpointEntry> listed_;
  CheckpointEntry start_, current_;
  pipelines::PipelineInfo info_;
};

enum class JobState { Queued, Running, Done, Failed, Cancelled };
const char* state_name(JobState s);
bool finished_state(JobState s);  // done, failed or cancelled

struct JobInput {
  pipelines::Request request;
  int64_t n_iter = 1;             // request.batch images, n_iter times (seeds continue)
  std::string video_format = "mp4";  // "mp4" or "webp"
  double fps = 0;                 // 0: the model's own
};

// One finished generation: PNGs with the `parameters` chunk exactly as `genvis generate` writes
// them; a video as a file in the output folder.
struct JobOutput {
  std::vector<std::string> pngs;  // encoded PNG bytes, one per image (videos: none)
  std::vector<std::string> infotexts;
  std::vector<uint64_t> seeds;
  std::string video_file, video_mime;  // file name in the output folder
  io::GenerationParameters first;      // parameters of the first sample
  int64_t width = 0, height = 0;
};

struct JobStatus {
  std::string id;
  JobState state = JobState::Queued;
  int64_t queue_position = 0;  // jobs ahead of this one (0 when running)
  int64_t step = 0, total = 0;
  double elapsed = 0, eta = 0;  // seconds
  std::string error;
  int error_status = 0;         // HTTP status for a failed job: 400 (bad request) or 500
  int64_t preview_version = 0;  // incremented with each new preview
  double created = 0;           // unix time
};

class Job {
public:
  Job(std::string id, JobInput input) : id_(std::move(id)), input_(std::move(input)) {}
  const std::string& id() const { return id_; }
  const JobInput& input() const { return input_; }
  JobStatus status() const;
  bool finished() const;
  // Blocks until finished or until `version` changes (progress, preview, state); returns the
  // current version. timeout_s bounds the wait.
  int64_t wait_change(int64_t version, double timeout_s) const;
  void wait() const;
  std::string preview_png() const;  // latest preview, "" when none
  std::shared_ptr<const JobOutput> output() const;
  void cancel() { cancel_requested_ = true; }
  bool cancel_requested() const { return cancel_requested_; }

private:
  friend class JobQueue;
  void update(const std::function<void(JobStatus&)>& f);
  std::string id_;
  JobInput input_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  JobStatus status_;
  int64_t version_ = 0;
  std::string preview_;
  std::shared_ptr<const JobOutput> output_;
  std::atomic<bool> cancel_requested_{false};
  double started_ = 0;
};

// STEM-<128 random bits>.EXT: files the server serves are reachable only by a link it handed out
// (GET /genvis/v1/files/NAME needs no API key, so a <video> or an OpenAI `url` works).
std::string unguessable_name(const std::string& stem, const std::string& extension);

class QueueFull : public std::runtime_error {
public:
  QueueFull(size_t depth, int retry_after_s)
      : std::runtime_error("the queue is full (" + std::to_string(depth) + " jobs); retry in about " +
                           std::to_string(retry_after_s) + " s"),
        retry_after_s_(retry_after_s) {}
  // When one job will have finished: the running average of the jobs run so far (at least 1 s).
  int retry_after_s() const { return retry_after_s_; }

private:
  int retry_after_s_;
};

struct JobQueueOptions {
  size_t depth = 16;           // queued + running jobs at most
  size_t keep_finished = 64;   // finished jobs kept for their results
  int64_t preview_every = 5;   // steps between previews (0: none)
  std::string output_dir;      // video files
};

class JobQueue {
public:
  JobQueue(ModelHost& host, JobQueueOptions options);
  ~JobQueue();
  std::shared_ptr<Job> submit(JobInput input);  // QueueFull; UsageError after shutdown()
  std::shared_ptr<Job> find(const std::string& id) const;
  std::shared_ptr<Job> running() const;
  size_t pending() const;  // queued + running
  void forget(const std::string& id);  // drop a finished job (a synchronous route read it)
  // Stops taking jobs, cancels the queued ones and the running one (within one step), joins.
  void shutdown();
  const std::string& output_dir() const { return options_.output_dir; }

private:
  void work();
  // Runs one job and returns the update that gives it its terminal state (applied by the worker).
  std::function<void(JobStatus&)> run(Job& job);
  ModelHost& host_;
  JobQueueOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::string> finished_order_;
  std::shared_ptr<Job> running_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  double job_seconds_ = 0;
  std::thread worker_;
};

}  // namespace genvis::server
