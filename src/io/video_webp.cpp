// Animated WebP through libwebp: each frame encoded whole by WebPEncode and pushed as its own
// ANMF chunk by libwebpmux (WebPAnimEncoder would merge a frame identical to the previous one
// into a longer duration, and a reader would then count fewer frames than were written); read
// back by WebPAnimDecoder (FFmpeg 5.1 cannot decode animated WebP).
#include "core/error.h"
#include "core/file.h"
#include "io/exif.h"
#include "io/video_internal.h"

#include <cmath>
#include <memory>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

namespace genvis::io::video_detail {
namespace {

constexpr size_t kMaxWebPFileBytes = size_t{1} << 31;
constexpr int kMaxFrameDurationMs = (1 << 24) - 1;  // ANMF's 24-bit duration

struct MuxDelete {
  void operator()(WebPMux* m) const { WebPMuxDelete(m); }
};
struct DemuxDelete {
  void operator()(WebPDemuxer* d) const { WebPDemuxDelete(d); }
};
struct AnimDecoderDelete {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};

const char* encoding_error(WebPEncodingError e) {
  switch (e) {
    case VP8_ENC_ERROR_OUT_OF_MEMORY: return "out of memory";
    case VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY: return "out of memory for the bitstream";
    case VP8_ENC_ERROR_BAD_DIMENSION: return "bad picture dimensions";
    case VP8_ENC_ERROR_PARTITION0_OVERFLOW: return "partition 0 overflow (picture too large for lossy VP8)";
    case VP8_ENC_ERROR_PARTITION_OVERFLOW: return "partition overflow";
    case VP8_ENC_ERROR_FILE_TOO_BIG: return "file too big";
    default: return "encoding error";
  }
}

const char* mux_error(WebPMuxError e) {
  switch (e) {
    case WEBP_MUX_NOT_FOUND: return "not found";
    case WEBP_MUX_INVALID_ARGUMENT: return "invalid argument";
    case WEBP_MUX_BAD_DATA: return "bad data";
    case WEBP_MUX_MEMORY_ERROR: return "out of memory";
    case WEBP_MUX_NOT_ENOUGH_DATA: return "not enough data";
    default: return "mux error";
  }
}

void check_mux(WebPMuxError e, const std::string& path, const std::string& what) {
  if (e != WEBP_MUX_OK) throw RuntimeError(path + ": libwebpmux " + what + ": " + mux_error(e));
}

// One frame as a complete single-image WebP.
std::string encode_frame(const uint8_t* rgb, int width, int height, const WebPConfig& config, const std::string& path) {
  WebPPicture picture;
  if (!WebPPictureInit(&picture)) throw RuntimeError(path + ": libwebp version mismatch");
  picture.use_argb = 1;  // lossy encoding converts to YUV itself, with config.use_sharp_yuv
  picture.width = width;
  picture.height = height;
  WebPMemoryWriter writer;
  WebPMemoryWriterInit(&writer);
  picture.writer = WebPMemoryWrite;
  picture.custom_ptr = &writer;
  const bool ok = WebPPictureImportRGB(&picture, rgb, width * 3) && WebPEncode(&config, &picture);
  const WebPEncodingError error = picture.error_code;
  WebPPictureFree(&picture);
  std::string bitstream(reinterpret_cast<const char*>(writer.mem), writer.size);
  WebPMemoryWriterClear(&writer);
  if (!ok) throw RuntimeError(path + ": libwebp cannot encode a frame: " + encoding_error(error));
  return bitstream;
}

std::vector<uint8_t> read_webp_bytes(const std::string& path) { return read_file(path, kMaxWebPFileBytes); }

}  // namespace

void write_webp(const std::string& path, const Rgb8Frames& frames, double fps, const std::string& comment,
                const VideoWriteOptions& options) {
  WebPConfig config;
  if (!WebPConfigInit(&config)) throw RuntimeError(path + ": libwebp version mismatch");
  if (options.webp_lossless) {
    WebPConfigLosslessPreset(&config, 6);  // cwebp -lossless's default effort
  } else {
    config.quality = options.webp_quality;
    config.method = 4;
    config.use_sharp_yuv = 1;
  }
  if (!WebPValidateConfig(&config)) throw RuntimeError(path + ": invalid libwebp configuration");

  std::unique_ptr<WebPMux, MuxDelete> mux(WebPMuxNew());
  if (!mux) throw RuntimeError(path + ": libwebpmux: out of memory");
  // Frame i ends at round((i + 1) * 1000 / fps) ms, so the durations add up to the exact length.
  const auto end_ms = [&](int64_t i) { return std::llround(static_cast<double>(i) * 1000.0 / fps); };
  for (int64_t t = 0; t < frames.count; ++t) {
    const long long duration = end_ms(t + 1) - end_ms(t);
    if (duration > kMaxFrameDurationMs)
      throw UsageError("'fps' " + std::to_string(fps) + " gives WebP frames longer than its 24-bit millisecond limit");
    const std::string bitstream = encode_frame(frames.frame(t), frames.width, frames.height, config, path);
    WebPMuxFrameInfo info{};
    info.bitstream.bytes = reinterpret_cast<const uint8_t*>(bitstream.data());
    info.bitstream.size = bitstream.size();
    info.x_offset = 0;
    info.y_offset = 0;
    info.duration = static_cast<int>(duration);
    info.id = WEBP_CHUNK_ANMF;
    info.dispose_method = WEBP_MUX_DISPOSE_NONE;
    info.blend_method = WEBP_MUX_NO_BLEND;
    check_mux(WebPMuxPushFrame(mux.get(), &info, 1), path, "adding frame " + std::to_string(t));
  }
  const WebPMuxAnimParams anim{0xFF000000u, 0};  // opaque black background, loop forever
  check_mux(WebPMuxSetAnimationParams(mux.get(), &anim), path, "setting the animation parameters");
  check_mux(WebPMuxSetCanvasSize(mux.get(), frames.width, frames.height), path, "setting the canvas size");
  if (!comment.empty()) {
    const std::string exif = encode_exif_user_comment(comment);
    const WebPData chunk{reinterpret_cast<const uint8_t*>(exif.data()), exif.size()};
    check_mux(WebPMuxSetChunk(mux.get(), "EXIF", &chunk, 1), path, "adding the EXIF chunk");
  }
  WebPData out;
  WebPDataInit(&out);
  check_mux(WebPMuxAssemble(mux.get(), &out), path, "assembling the file");
  const std::string bytes(reinterpret_cast<const char*>(out.bytes), out.size);
  WebPDataClear(&out);
  write_file_atomic(path, bytes);
}

Rgb8Frames read_webp(const std::string& path, int64_t max_frames) {
  const std::vector<uint8_t> bytes = read_webp_bytes(path);
  const WebPData data{bytes.data(), bytes.size()};
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) throw RuntimeError(path + ": libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDelete> decoder(WebPAnimDecoderNew(&data, &options));
  if (!decoder) throw LoadError(path, "not a valid WebP file (truncated or corrupt)");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(decoder.get(), &info)) throw LoadError(path, "cannot read the WebP header");
  if (info.frame_count == 0) throw LoadError(path, "WebP holds no frames");
  if (info.canvas_width < 1 || info.canvas_height < 1 || info.canvas_width > kMaxVideoSide ||
      info.canvas_height > kMaxVideoSide)
    throw LoadError(path, "WebP canvas " + std::to_string(info.canvas_width) + "x" +
                              std::to_string(info.canvas_height) + " is outside 1.." + std::to_string(kMaxVideoSide));
  Rgb8Frames f;
  f.width = static_cast<int>(info.canvas_width);
  f.height = static_cast<int>(info.canvas_height);
  const int64_t n = max_frames > 0 ? std::min<int64_t>(max_frames, info.frame_count) : info.frame_count;
  f.pixels.resize(static_cast<size_t>(n) * f.frame_bytes());
  int end_ms = 0;
  for (; f.count < n; ++f.count) {
    uint8_t* rgba = nullptr;
    if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &end_ms))
      throw LoadError(path, "WebP frame " + std::to_string(f.count) + " cannot be decoded (truncated or corrupt)");
    uint8_t* out = f.pixels.data() + static_cast<size_t>(f.count) * f.frame_bytes();
    const size_t pixels = static_cast<size_t>(f.width) * static_cast<size_t>(f.height);
    for (size_t p = 0; p < pixels; ++p)
      for (int c = 0; c < 3; ++c) out[p * 3 + static_cast<size_t>(c)] = rgba[p * 4 + static_cast<size_t>(c)];
  }
  // The decoder's timestamp is where the frame ends: the first n frames last end_ms.
  if (end_ms > 0) f.fps = static_cast<double>(f.count) * 1000.0 / end_ms;
  return f;
}

VideoInfo probe_webp(const std::string& path) {
  const std::vector<uint8_t> bytes = read_webp_bytes(path);
  const WebPData data{bytes.data(), bytes.size()};
  std::unique_ptr<WebPDemuxer, DemuxDelete> demux(WebPDemux(&data));
  if (!demux) throw LoadError(path, "not a valid WebP file (truncated or corrupt)");
  VideoInfo info;
  info.format = "webp";
  info.width = static_cast<int>(WebPDemuxGetI(demux.get(), WEBP_FF_CANVAS_WIDTH));
  info.height = static_cast<int>(WebPDemuxGetI(demux.get(), WEBP_FF_CANVAS_HEIGHT));
  info.frame_count = WebPDemuxGetI(demux.get(), WEBP_FF_FRAME_COUNT);
  const bool animated = WebPDemuxGetI(demux.get(), WEBP_FF_FORMAT_FLAGS) & ANIMATION_FLAG;
  int64_t total_ms = 0;
  bool lossy = false, lossless = false;
  WebPIterator it;
  if (WebPDemuxGetFrame(demux.get(), 1, &it)) {
    do {
      total_ms += it.duration;
      WebPBitstreamFeatures features;
      if (WebPGetFeatures(it.fragment.bytes, it.fragment.size, &features) == VP8_STATUS_OK)
        (features.format == 2 ? lossless : lossy) = true;
    } while (WebPDemuxNextFrame(&it));
    WebPDemuxReleaseIterator(&it);
  }
  info.codec = lossless && lossy ? "vp8+vp8l" : lossless ? "vp8l" : "vp8";  // WebP's lossless and lossy bitstreams
  if (animated && total_ms > 0) info.fps = static_cast<double>(info.frame_count) * 1000.0 / static_cast<double>(total_ms);
  if (animated) info.metadata.emplace_back("loop_count", std::to_string(WebPDemuxGetI(demux.get(), WEBP_FF_LOOP_COUNT)));
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demux.get(), "EXIF", 1, &chunk)) {
    try {
      const auto comment = decode_exif_user_comment(chunk.chunk.bytes, chunk.chunk.size, path);
      if (comment && !comment->empty()) {
        info.parameters = *comment;
        info.metadata.emplace_back("EXIF UserComment", *comment);
      } else {
        info.metadata.emplace_back("EXIF", std::to_string(chunk.chunk.size) + " bytes without a UserComment");
      }
    } catch (const LoadError& e) {
      info.metadata.emplace_back("EXIF", std::string("unreadable: ") + e.what());
    }
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  if (WebPDemuxGetChunk(demux.get(), "XMP ", 1, &chunk)) {
    info.metadata.emplace_back("XMP", std::to_string(chunk.chunk.size) + " bytes");
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  return info;
}

}  // namespace genvis::io::video_detail
