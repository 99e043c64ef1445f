// Video files written by io::write_video and read back through the libraries' own decoders
// (FFmpeg's h264 decoder for MP4, libwebp's WebPAnimDecoder, libpng), plus WebM and GIF inputs
// made here with libavcodec's encoders, and every kind of bad input.
#include "io/video.h"

#include "core/error.h"
#include "core/file.h"
#include "io/image.h"
#include "support/test_support.h"

#include <cmath>
#include <filesystem>
#include <fstream>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

namespace genvis::io {
namespace {

namespace fs = std::filesystem;

// Smooth moving colour fields (codecs are built for these, not for noise), on the 8-bit grid so
// that lossless formats must give them back exactly. [3, T, H, W] in [0, 1].
at::Tensor smooth_video(int64_t t, int64_t h, int64_t w) {
  const at::Tensor ts = at::arange(t, at::kFloat).view({1, t, 1, 1});
  const at::Tensor ys = at::arange(h, at::kFloat).view({1, 1, h, 1});
  const at::Tensor xs = at::arange(w, at::kFloat).view({1, 1, 1, w});
  const at::Tensor c = at::arange(3, at::kFloat).view({3, 1, 1, 1});
  const at::Tensor v = 0.5 + 0.4 * at::sin(xs * (0.15 + 0.05 * c) + ys * 0.1 * (c - 1) + ts * 0.4 + c * 2);
  return (v * 255).round() / 255;
}

double mean_abs_error(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().mean().item<double>(); }

GenerationParameters sample_parameters() {
  GenerationParameters p;
  p.prompt = "a red fox running through snow, (cinematic:1.2), 雪の狐 🦊";
  p.negative_prompt = "blurry, static";
  p.steps = 30;
  p.sampler = "UniPC";
  p.cfg_scale = 5;
  p.seed = 42;
  p.width = 48;
  p.height = 32;
  p.model = "Wan2.1-T2V-1.3B";
  p.extra = {{"Frames", "8"}, {"Flow shift", "3"}};
  return p;
}

// Expects `f` to throw E whose message names `part` (a path or a reason).
template <class E, class F>
void expect_error(F f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one naming '" << part << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// The measured error is printed so that the bounds below can be checked against it.
void report(const std::string& what, double mae) {
  std::cout << "[ video    ] " << what << " mean abs error " << mae << " (" << mae * 255 << " / 255)\n";
}

TEST(VideoFiles, FormatIsChosenByTheOutputPath) {
  EXPECT_EQ(video_format_for_path("a/clip.mp4"), VideoFormat::MP4);
  EXPECT_EQ(video_format_for_path("CLIP.MP4"), VideoFormat::MP4);
  EXPECT_EQ(video_format_for_path("clip.webp"), VideoFormat::WebP);
  EXPECT_EQ(video_format_for_path("frames/"), VideoFormat::Frames);
  EXPECT_EQ(video_format_for_path("out/clip"), VideoFormat::Frames);
  EXPECT_EQ(video_format_for_path("clip.v2/"), VideoFormat::Frames);
  expect_error<UsageError>([] { video_format_for_path("clip.avi"); }, "'.avi'");
  expect_error<UsageError>([] { video_format_for_path("clip.png"); }, ".mp4");
}

TEST(VideoFiles, Mp4IsH264ThatFFmpegDecodesBack) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  const at::Tensor video = smooth_video(8, 32, 48);
  write_video(path, video, 16, sample_parameters());

  const Video back = read_video(path);
  ASSERT_EQ(back.frames.sizes(), video.sizes());
  EXPECT_EQ(back.frames.scalar_type(), at::kFloat);
  EXPECT_DOUBLE_EQ(back.fps, 16);
  const double mae = mean_abs_error(back.frames, video);
  report("H.264 crf 18 yuv420p", mae);
  EXPECT_LT(mae, 0.02);  // ~5/255: 4:2:0 chroma and crf 18 quantisation on a 32x48 picture
  EXPECT_GE(back.frames.min().item<float>(), 0.0f);
  EXPECT_LE(back.frames.max().item<float>(), 1.0f);

  const VideoInfo info = probe_video(path);
  EXPECT_EQ(info.format, "mp4");
  EXPECT_EQ(info.codec, "h264");
  EXPECT_EQ(info.width, 48);
  EXPECT_EQ(info.height, 32);
  EXPECT_EQ(info.frame_count, 8);
  EXPECT_DOUBLE_EQ(info.fps, 16);
  ASSERT_TRUE(info.parameters);
  EXPECT_EQ(*info.parameters, format_infotext(sample_parameters()));
  EXPECT_EQ(read_video_parameters(path), sample_parameters());
  EXPECT_TRUE(looks_like_video_file(path));
  // Written atomically: no temporary file is left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(VideoFiles, Mp4KeepsFractionalFrameRates) {
  test::TempDir dir;
  write_video(dir.file("ntsc.mp4"), smooth_video(5, 16, 16), 30000.0 / 1001, {});
  const Video back = read_video(dir.file("ntsc.mp4"));
  EXPECT_EQ(back.frames.size(1), 5);
  EXPECT_NEAR(back.fps, 29.97003, 1e-4);
  EXPECT_EQ(read_video_parameters(dir.file("ntsc.mp4")), std::nullopt);  // none were given
}

TEST(VideoFiles, Mp4PadsOddSizesToEvenOnes) {
  test::TempDir dir;
  const at::Tensor video = smooth_video(4, 31, 47);
  write_video(dir.file("odd.mp4"), video, 8, {});
  const Video back = read_video(dir.file("odd.mp4"));
  ASSERT_EQ(back.frames.sizes(), (std::vector<int64_t>{3, 4, 32, 48}));
  const double mae = mean_abs_error(back.frames.slice(2, 0, 31).slice(3, 0, 47), video);
  report("H.264 padded 47x31 -> 48x32", mae);
  EXPECT_LT(mae, 0.02);
  // The added column and row repeat the last ones.
  EXPECT_LT(mean_abs_error(back.frames.select(3, 47), back.frames.select(3, 46)), 0.03);
  EXPECT_LT(mean_abs_error(back.frames.select(2, 31), back.frames.select(2, 30)), 0.03);
}

TEST(VideoFiles, LosslessWebPIsExact) {
  test::TempDir dir;
  const std::string path = dir.file("clip.webp");
  const at::Tensor video = smooth_video(8, 32, 48);
  write_video(path, video, 16, sample_parameters());

  const Video back = read_video(path);
  ASSERT_EQ(back.frames.sizes(), video.sizes());
  EXPECT_DOUBLE_EQ(back.fps, 16);  // 8 frames of 62/63 ms end at exactly 500 ms
  EXPECT_EQ(back.frames.sub(video).abs().max().item<float>(), 0.0f);
  report("WebP lossless", mean_abs_error(back.frames, video));

  const VideoInfo info = probe_video(path);
  EXPECT_EQ(info.format, "webp");
  EXPECT_EQ(info.codec, "vp8l");  // lossless bitstream
  EXPECT_EQ(info.frame_count, 8);
  EXPECT_EQ(info.width, 48);
  EXPECT_EQ(info.height, 32);
  EXPECT_DOUBLE_EQ(info.fps, 16);
  EXPECT_EQ(read_video_parameters(path), sample_parameters());
  EXPECT_TRUE(looks_like_video_file(path));
}

TEST(VideoFiles, LossyWebPIsClose) {
  test::TempDir dir;
  const at::Tensor video = smooth_video(8, 32, 48);
  write_video(dir.file("lossy.webp"), video, 24, sample_parameters(), {.webp_lossless = false, .webp_quality = 90});
  const Video back = read_video(dir.file("lossy.webp"));
  ASSERT_EQ(back.frames.sizes(), video.sizes());
  EXPECT_NEAR(back.fps, 24, 0.05);  // whole milliseconds: 8 frames in 333 ms
  const double mae = mean_abs_error(back.frames, video);
  report("WebP lossy q90", mae);
  EXPECT_LT(mae, 0.02);
  EXPECT_EQ(probe_video(dir.file("lossy.webp")).codec, "vp8");
  EXPECT_EQ(read_video_parameters(dir.file("lossy.webp")), sample_parameters());
}

TEST(VideoFiles, WebPKeepsIdenticalFramesAsFrames) {
  // WebPAnimEncoder would merge these into one long frame; the frame count must survive.
  test::TempDir dir;
  const at::Tensor still = smooth_video(1, 16, 16).expand({3, 5, 16, 16});
  write_video(dir.file("still.webp"), still, 10, {});
  const Video back = read_video(dir.file("still.webp"));
  EXPECT_EQ(back.frames.size(1), 5);
  EXPECT_DOUBLE_EQ(back.fps, 10);
  EXPECT_EQ(probe_video(dir.file("still.webp")).frame_count, 5);
}

TEST(VideoFiles, FramesFolderRoundTripsExactly) {
  test::TempDir dir;
  const at::Tensor video = smooth_video(8, 32, 48);
  const std::string folder = dir.file("clip/");
  write_video(folder, video, 12.5, sample_parameters());
  for (int t = 0; t < 8; ++t) {
    const std::string frame = dir.file("clip/frame-000" + std::to_string(t) + ".png");
    ASSERT_TRUE(fs::exists(frame)) << frame;
    const PngText text = read_png_text(frame);
    ASSERT_EQ(text.size(), 2u);
    EXPECT_EQ(text[0].first, "parameters");
    EXPECT_EQ(parse_infotext(text[0].second), sample_parameters());
    EXPECT_EQ(text[1], (std::pair<std::string, std::string>{"fps", "12.5"}));
  }
  const Video back = read_video(folder);
  ASSERT_EQ(back.frames.sizes(), video.sizes());
  EXPECT_EQ(back.frames.sub(video).abs().max().item<float>(), 0.0f);
  EXPECT_DOUBLE_EQ(back.fps, 12.5);
  const VideoInfo info = probe_video(folder);
  EXPECT_EQ(info.format, "frames");
  EXPECT_EQ(info.frame_count, 8);
  EXPECT_EQ(info.width, 48);
  EXPECT_EQ(read_video_parameters(dir.file("clip")), sample_parameters());

  // A shorter video written over it removes the frames it no longer has, and nothing else.
  std::ofstream(dir.file("clip/notes.txt")) << "mine";
  write_video(dir.file("clip"), video.slice(1, 0, 3), 12.5, {});
  EXPECT_EQ(read_video(folder).frames.size(1), 3);
  EXPECT_FALSE(fs::exists(dir.file("clip/frame-0003.png")));
  EXPECT_TRUE(fs::exists(dir.file("clip/notes.txt")));
  EXPECT_EQ(read_video_parameters(folder), std::nullopt);
}

TEST(VideoFiles, FramesFolderSortsByNumberAndAcceptsAnyPngs) {
  test::TempDir dir;
  fs::create_directories(dir.file("f"));
  // 16-bit and gray+alpha frames become RGB floats; "10" sorts after "9".
  for (int i : {9, 10, 8}) {
    Image image = Image::blank(6, 4, 2, 16, static_cast<uint16_t>(i * 1000));
    write_png(dir.file("f/img" + std::to_string(i) + ".png"), image);
  }
  const Video v = read_video(dir.file("f"));
  ASSERT_EQ(v.frames.sizes(), (std::vector<int64_t>{3, 3, 4, 6}));
  EXPECT_FLOAT_EQ(v.frames[0][0][0][0].item<float>(), 8000.0f / 65535);
  EXPECT_FLOAT_EQ(v.frames[2][1][3][5].item<float>(), 9000.0f / 65535);
  EXPECT_FLOAT_EQ(v.frames[1][2][0][0].item<float>(), 10000.0f / 65535);
  EXPECT_EQ(v.fps, 0);  // no fps chunk: unknown
}

TEST(VideoFiles, MaxFramesReadsTheFirstFrames) {
  test::TempDir dir;
  const at::Tensor video = smooth_video(8, 16, 16);
  for (const std::string name : {"m.mp4", "m.webp", "m/"}) {
    write_video(dir.file(name), video, 16, {});
    const Video v = read_video(dir.file(name), {.max_frames = 3});
    EXPECT_EQ(v.frames.size(1), 3) << name;
    EXPECT_LT(mean_abs_error(v.frames, video.slice(1, 0, 3)), 0.02) << name;
    EXPECT_EQ(read_video(dir.file(name), {.max_frames = 100}).frames.size(1), 8) << name;
  }
}

// --- Inputs genvis does not write, made with libavcodec's own encoders.

// Encodes `video` with `codec_name` into `container` (frame rate `fps`), converting RGB24 to
// `pix_fmt` with swscale. Returns false when this FFmpeg lacks the encoder.
bool encode_with_ffmpeg(const std::string& path, const at::Tensor& video, int fps, const char* container,
                        const char* codec_name, AVPixelFormat pix_fmt) {
  const AVCodec* codec = avcodec_find_encoder_by_name(codec_name);
  if (!codec) return false;
  const int t = static_cast<int>(video.size(1)), h = static_cast<int>(video.size(2)), w = static_cast<int>(video.size(3));
  AVFormatContext* out = nullptr;
  EXPECT_GE(avformat_alloc_output_context2(&out, nullptr, container, path.c_str()), 0);
  AVStream* st = avformat_new_stream(out, nullptr);
  AVCodecContext* c = avcodec_alloc_context3(codec);
  c->width = w, c->height = h, c->pix_fmt = pix_fmt;
  c->time_base = {1, fps}, c->framerate = {fps, 1};
  if (std::string(codec_name) == "libvpx") c->bit_rate = 2000000;
  if (out->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  EXPECT_GE(avcodec_open2(c, codec, nullptr), 0);
  avcodec_parameters_from_context(st->codecpar, c);
  st->time_base = c->time_base;
  EXPECT_GE(avio_open(&out->pb, path.c_str(), AVIO_FLAG_WRITE), 0);
  EXPECT_GE(avformat_write_header(out, nullptr), 0);
  const at::Tensor rgb = (video * 255).round().to(at::kByte).permute({1, 2, 3, 0}).contiguous();
  SwsContext* sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, pix_fmt, SWS_BICUBIC, nullptr, nullptr, nullptr);
  AVFrame* frame = av_frame_alloc();
  frame->format = pix_fmt, frame->width = w, frame->height = h;
  av_frame_get_buffer(frame, 0);
  AVPacket* packet = av_packet_alloc();
  const auto drain = [&] {
    while (avcodec_receive_packet(c, packet) >= 0) {
      av_packet_rescale_ts(packet, c->time_base, st->time_base);
      packet->stream_index = 0;
      av_interleaved_write_frame(out, packet);
    }
  };
  for (int i = 0; i < t; ++i) {
    av_frame_make_writable(frame);
    const uint8_t* src[1] = {rgb[i].data_ptr<uint8_t>()};
    const int stride[1] = {w * 3};
    sws_scale(sws, src, stride, 0, h, frame->data, frame->linesize);
    frame->pts = i;
    EXPECT_GE(avcodec_send_frame(c, frame), 0);
    drain();
  }
  avcodec_send_frame(c, nullptr);
  drain();
  av_write_trailer(out);
  avio_closep(&out->pb);
  av_packet_free(&packet);
  av_frame_free(&frame);
  sws_freeContext(sws);
  avcodec_free_context(&c);
  avformat_free_context(out);
  return true;
}

TEST(VideoFiles, ReadsWebMAndGif) {
  test::TempDir dir;
  const at::Tensor video = smooth_video(6, 32, 48);
  if (!encode_with_ffmpeg(dir.file("clip.webm"), video, 10, "webm", "libvpx", AV_PIX_FMT_YUV420P))
    GTEST_SKIP() << "this FFmpeg has no libvpx encoder";
  Video webm = read_video(dir.file("clip.webm"));
  ASSERT_EQ(webm.frames.sizes(), video.sizes());
  EXPECT_DOUBLE_EQ(webm.fps, 10);
  double mae = mean_abs_error(webm.frames, video);
  report("WebM VP8 2 Mb/s (read only)", mae);
  EXPECT_LT(mae, 0.03);
  VideoInfo info = probe_video(dir.file("clip.webm"));
  EXPECT_EQ(info.codec, "vp8");
  EXPECT_EQ(info.frame_count, 6);  // counted from the packets: WebM has no frame index
  EXPECT_TRUE(looks_like_video_file(dir.file("clip.webm")));

  ASSERT_TRUE(encode_with_ffmpeg(dir.file("clip.gif"), video, 10, "gif", "gif", AV_PIX_FMT_RGB8));
  Video gif = read_video(dir.file("clip.gif"));
  ASSERT_EQ(gif.frames.sizes(), video.sizes());
  EXPECT_NEAR(gif.fps, 10, 1e-6);  // 10 centiseconds a frame
  mae = mean_abs_error(gif.frames, video);
  report("GIF rgb8 palette (read only)", mae);
  EXPECT_LT(mae, 0.1);  // 3-3-2 bit colours
  info = probe_video(dir.file("clip.gif"));
  EXPECT_EQ(info.format, "gif");
  EXPECT_EQ(info.frame_count, 6);
}

// --- Bad input: one clear error each, never a crash.

TEST(VideoFiles, BadWritesAreUsageErrors) {
  test::TempDir dir;
  const at::Tensor video = smooth_video(2, 8, 8);
  for (const std::string name : {"a.mp4", "a.webp", "a/"}) {
    for (const double fps : {0.0, -1.0, std::nan(""), double(INFINITY), 1001.0})
      expect_error<UsageError>([&] { write_video(dir.file(name), video, fps, {}); }, "'fps'");
    expect_error<UsageError>([&] { write_video(dir.file(name), at::zeros({3, 0, 8, 8}), 16, {}); }, "no frames");
    expect_error<UsageError>([&] { write_video(dir.file(name), at::zeros({2, 3, 8, 8}), 16, {}); }, "[3, T, H, W]");
    expect_error<UsageError>([&] { write_video(dir.file(name), at::zeros({3, 8, 8}), 16, {}); }, "[3, T, H, W]");
    expect_error<UsageError>([&] { write_video(dir.file(name), at::Tensor(), 16, {}); }, "undefined");
    EXPECT_FALSE(fs::exists(dir.file(name))) << name;
  }
  expect_error<UsageError>([&] { write_video(dir.file("a.avi"), video, 16, {}); }, "a.avi");
  expect_error<UsageError>([&] { write_video(dir.file("a.mp4"), video, 16, {}, {.h264_crf = 52}); }, "crf");
  expect_error<UsageError>([&] { write_video(dir.file("a.mp4"), smooth_video(1, 1, 20000), 16, {}); }, "20000x1");
  std::ofstream(dir.file("taken")) << "a file";
  expect_error<UsageError>([&] { write_video(dir.file("taken"), video, 16, {}); }, "not a folder");
  // NaN and out-of-range values are written as 0 and clamped, not refused.
  at::Tensor wild = video.clone();
  wild[0][0][0][0] = NAN;
  wild[1][0][0][0] = 7;
  write_video(dir.file("wild/"), wild, 16, {});
  const at::Tensor back = read_video(dir.file("wild")).frames;
  EXPECT_EQ(back[0][0][0][0].item<float>(), 0.0f);
  EXPECT_EQ(back[1][0][0][0].item<float>(), 1.0f);
}

TEST(VideoFiles, MissingAndNonVideoFilesAreLoadErrors) {
  test::TempDir dir;
  expect_error<LoadError>([&] { read_video(dir.file("missing.mp4")); }, "missing.mp4");
  expect_error<LoadError>([&] { probe_video(dir.file("missing.webp")); }, "no such file");
  expect_error<LoadError>([&] { read_video_parameters(dir.file("missing")); }, "missing");
  test::write_bytes(dir.file("text.mp4"), "this is not a video at all, only some text\n");
  expect_error<LoadError>([&] { read_video(dir.file("text.mp4")); }, "text.mp4");
  test::write_bytes(dir.file("empty.webm"), "");
  expect_error<LoadError>([&] { read_video(dir.file("empty.webm")); }, "empty.webm");
  test::write_bytes(dir.file("fake.webp"), std::string("RIFF\x20\0\0\0WEBPVP8L", 16) + std::string(20, '\x55'));
  expect_error<LoadError>([&] { read_video(dir.file("fake.webp")); }, "fake.webp");
  expect_error<LoadError>([&] { probe_video(dir.file("fake.webp")); }, "fake.webp");
  EXPECT_FALSE(looks_like_video_file(dir.file("text.mp4")));
  EXPECT_FALSE(looks_like_video_file(dir.path()));
  expect_error<UsageError>([&] { read_video(dir.file("text.mp4"), {.max_frames = -1}); }, "max_frames");
}

TEST(VideoFiles, TruncatedAndCorruptFilesAreLoadErrors) {
  test::TempDir dir;
  const at::Tensor video = smooth_video(8, 32, 48);
  for (const std::string name : {"t.mp4", "t.webp"}) {
    write_video(dir.file(name), video, 16, sample_parameters());
    const std::string bytes = test::read_bytes(dir.file(name));
    // Cut anywhere (about 100 places, the last byte included): never a shorter video without a word.
    const std::string cut = dir.file("cut-" + name);
    for (size_t keep = 0; keep < bytes.size(); keep += std::max<size_t>(1, bytes.size() / 100)) {
      test::write_bytes(cut, bytes.substr(0, keep));
      expect_error<LoadError>([&] { read_video(cut); }, cut);
    }
    test::write_bytes(cut, bytes.substr(0, bytes.size() - 1));
    expect_error<LoadError>([&] { read_video(cut); }, cut);
    // The container's header overwritten.
    std::string corrupt = bytes;
    for (size_t i = 0; i < 32; ++i) corrupt[i] = static_cast<char>(0xA5 ^ i);
    test::write_bytes(dir.file("corrupt-" + name), corrupt);
    expect_error<LoadError>([&] { read_video(dir.file("corrupt-" + name)); }, "corrupt-" + name);
  }
  // WebP frame data scrambled behind an intact container: libwebp refuses the frame.
  std::string webp = test::read_bytes(dir.file("t.webp"));
  for (size_t i = webp.size() / 2; i < webp.size() / 2 + 64; ++i) webp[i] = static_cast<char>(i * 37);
  test::write_bytes(dir.file("scrambled.webp"), webp);
  expect_error<LoadError>([&] { read_video(dir.file("scrambled.webp")); }, "scrambled.webp");
}

TEST(VideoFiles, BadFramesFoldersAreLoadErrors) {
  test::TempDir dir;
  fs::create_directories(dir.file("empty"));
  expect_error<LoadError>([&] { read_video(dir.file("empty")); }, "no PNG frames");
  write_video(dir.file("mixed/"), smooth_video(2, 8, 8), 16, {});
  write_png(dir.file("mixed/frame-0002.png"), Image::blank(9, 8, 3));
  expect_error<LoadError>([&] { read_video(dir.file("mixed")); }, "frame-0002.png");
  expect_error<LoadError>([&] { read_video(dir.file("mixed")); }, "9x8");
  EXPECT_EQ(read_video(dir.file("mixed"), {.max_frames = 2}).frames.size(1), 2);  // stops before the odd one
  fs::remove(dir.file("mixed/frame-0002.png"));
  test::write_bytes(dir.file("mixed/frame-0002.png"), "not a png");
  expect_error<LoadError>([&] { read_video(dir.file("mixed")); }, "frame-0002.png");
}

}  // namespace
}  // namespace genvis::io
