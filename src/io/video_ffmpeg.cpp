// MP4 writing and every other container through FFmpeg's libraries: libavformat (mux/demux),
// libavcodec (libx264 encoding, any decoder), libswscale (RGB <-> YUV). The pattern is FFmpeg's
// send/receive API: frames in, packets out, until a null frame or packet drains the codec.
#include "core/error.h"
#include "core/log.h"
#include "io/video_internal.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <unistd.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace genvis::io::video_detail {
namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(code, buf, sizeof buf) < 0) return "FFmpeg error " + std::to_string(code);
  return buf;
}

// FFmpeg's own log lines (x264's statistics, demuxer complaints) go to genvis' debug log: the
// errors that matter come back as return codes and become typed errors naming the file.
void forward_av_log(void* avcl, int level, const char* format, va_list args) {
  if (level > AV_LOG_VERBOSE || log_level() > LogLevel::Debug) return;
  thread_local int print_prefix = 1;
  char line[1024];
  av_log_format_line2(avcl, level, format, args, line, sizeof line, &print_prefix);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!text.empty()) log_debug("ffmpeg: " + text);
}

void quiet_av_log() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(forward_av_log); });
}

struct FormatOutputDelete {
  void operator()(AVFormatContext* c) const {
    if (c->pb) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct FormatInputDelete {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecDelete {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDelete {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDelete {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDelete {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FramePtr = std::unique_ptr<AVFrame, FrameDelete>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDelete>;

// The temporary file an MP4 is written to, renamed over the target on success and removed
// otherwise (libavformat needs a seekable file of its own for +faststart).
class TempPath {
public:
  explicit TempPath(const std::string& path) : target_(path) {
    static std::atomic<int> counter{0};
    temp_ = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  }
  ~TempPath() {
    if (!committed_) {
      std::error_code ec;
      std::filesystem::remove(temp_, ec);
    }
  }
  const std::string& temp() const { return temp_; }
  void commit() {
    std::error_code ec;
    std::filesystem::rename(temp_, target_, ec);
    if (ec) throw RuntimeError(target_ + ": cannot move the written video into place: " + ec.message());
    committed_ = true;
  }

private:
  std::string target_, temp_;
  bool committed_ = false;
};

// Sends `frame` (null: drain) and writes every packet the encoder returns.
void encode(AVCodecContext* codec, const AVFrame* frame, AVStream* stream, AVFormatContext* out, AVPacket* packet,
            const std::string& path) {
  int r = avcodec_send_frame(codec, frame);
  if (r < 0) throw RuntimeError(path + ": the " + codec->codec->name + " encoder refused a frame: " + av_error(r));
  while ((r = avcodec_receive_packet(codec, packet)) >= 0) {
    if (packet->duration == 0) packet->duration = 1;  // one frame in the codec's 1/fps time base
    av_packet_rescale_ts(packet, codec->time_base, stream->time_base);
    packet->stream_index = stream->index;
    r = av_interleaved_write_frame(out, packet);  // takes the packet's data and unrefs it
    if (r < 0) throw RuntimeError(path + ": cannot write a packet: " + av_error(r));
  }
  if (r != AVERROR(EAGAIN) && r != AVERROR_EOF)
    throw RuntimeError(path + ": the " + codec->codec->name + " encoder failed: " + av_error(r));
}

int sws_colorspace(AVColorSpace space) {
  switch (space) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_DEFAULT;  // BT.601, also what FFmpeg assumes for untagged video
  }
}

// The demuxer's name, except that ISO media says mp4 (or mov) instead of "mov,mp4,m4a,3gp,3g2,mj2".
std::string format_name(const AVFormatContext* fmt) {
  std::string name = fmt->iformat->name;
  if (name.rfind("mov,", 0) == 0) {
    const AVDictionaryEntry* brand = av_dict_get(fmt->metadata, "major_brand", nullptr, 0);
    return brand && std::strncmp(brand->value, "qt", 2) == 0 ? "mov" : "mp4";
  }
  return name;
}

double stream_fps(const AVStream* st) {
  if (st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0) return av_q2d(st->avg_frame_rate);
  if (st->r_frame_rate.num > 0 && st->r_frame_rate.den > 0) return av_q2d(st->r_frame_rate);
  return 0;
}

// An opened input with its best video stream.
struct Input {
  std::unique_ptr<AVFormatContext, FormatInputDelete> fmt;
  int stream = -1;
  const AVCodec* decoder = nullptr;
};

Input open_input(const std::string& path) {
  quiet_av_log();
  Input in;
  AVFormatContext* fmt = nullptr;
  int r = avformat_open_input(&fmt, path.c_str(), nullptr, nullptr);
  if (r < 0) throw LoadError(path, "not a video file FFmpeg can read (" + av_error(r) + ")");
  in.fmt.reset(fmt);
  r = avformat_find_stream_info(fmt, nullptr);
  if (r < 0) throw LoadError(path, "cannot read the stream information (truncated or corrupt?): " + av_error(r));
  in.stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &in.decoder, 0);
  if (in.stream == AVERROR_STREAM_NOT_FOUND) throw LoadError(path, "holds no video stream (or is cut off before one)");
  if (in.stream == AVERROR_DECODER_NOT_FOUND || !in.decoder) {
    const int any = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    const char* codec = any >= 0 ? avcodec_get_name(fmt->streams[any]->codecpar->codec_id) : "?";
    throw LoadError(path, std::string("this FFmpeg build has no decoder for its ") + codec + " video");
  }
  if (in.stream < 0) throw LoadError(path, "cannot find its video stream: " + av_error(in.stream));
  const AVCodecParameters* par = fmt->streams[in.stream]->codecpar;
  if (par->width == 0 || par->height == 0)
    throw LoadError(path, std::string("its ") + avcodec_get_name(par->codec_id) +
                              " stream has no frame size (truncated or corrupt)");
  if (par->width < 1 || par->height < 1 || par->width > kMaxVideoSide || par->height > kMaxVideoSide)
    throw LoadError(path, "video size " + std::to_string(par->width) + "x" + std::to_string(par->height) +
                              " is outside 1.." + std::to_string(kMaxVideoSide));
  return in;
}

// Decoded frames -> packed RGB24, one swscale context reused while the frames keep their format.
class RgbConverter {
public:
  RgbConverter(Rgb8Frames& out, const std::string& path) : out_(out), path_(path) {}

  void append(const AVFrame* frame) {
    if (out_.count == 0) {
      out_.width = frame->width;
      out_.height = frame->height;
    } else if (frame->width != out_.width || frame->height != out_.height) {
      throw LoadError(path_, "frame " + std::to_string(out_.count) + " is " + std::to_string(frame->width) + "x" +
                                 std::to_string(frame->height) + " but the first is " + std::to_string(out_.width) +
                                 "x" + std::to_string(out_.height) + ": frames that change size are not supported");
    }
    const auto format = static_cast<AVPixelFormat>(frame->format);
    sws_.reset(sws_getCachedContext(sws_.release(), frame->width, frame->height, format, frame->width, frame->height,
                                    AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr,
                                    nullptr, nullptr));
    if (!sws_) throw LoadError(path_, std::string("cannot convert ") + av_get_pix_fmt_name(format) + " frames to RGB");
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
    if (desc && !(desc->flags & AV_PIX_FMT_FLAG_RGB) && desc->nb_components >= 3) {
      // YUV: the matrix and range the stream is tagged with (untagged: BT.601, limited range).
      const int full = frame->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
      sws_setColorspaceDetails(sws_.get(), sws_getCoefficients(sws_colorspace(frame->colorspace)), full,
                               sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    }
    const size_t at = out_.pixels.size();
    out_.pixels.resize(at + out_.frame_bytes());
    uint8_t* dst[4] = {out_.pixels.data() + at, nullptr, nullptr, nullptr};
    int dst_stride[4] = {out_.width * 3, 0, 0, 0};
    const int rows = sws_scale(sws_.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
    if (rows != frame->height) throw LoadError(path_, "cannot convert frame " + std::to_string(out_.count) + " to RGB");
    ++out_.count;
  }

private:
  Rgb8Frames& out_;
  const std::string& path_;
  std::unique_ptr<SwsContext, SwsDelete> sws_;
};

}  // namespace

void write_mp4(const std::string& path, const Rgb8Frames& frames, double fps, const std::string& comment,
               const VideoWriteOptions& options) {
  quiet_av_log();
  const int width = frames.width + (frames.width & 1), height = frames.height + (frames.height & 1);
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  const bool h264 = codec != nullptr;
  if (!h264) {
    codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec) throw RuntimeError(path + ": this FFmpeg build has neither the libx264 nor the mpeg4 encoder");
    log_warn(path + ": this FFmpeg build has no libx264 (H.264) encoder; writing MPEG-4 Part 2 video instead");
  }
  if (width != frames.width || height != frames.height)
    log_warn(path + ": " + (h264 ? "H.264" : "MPEG-4") + " with 4:2:0 chroma needs even sizes; the " +
             std::to_string(frames.width) + "x" + std::to_string(frames.height) + " frames are padded to " +
             std::to_string(width) + "x" + std::to_string(height) + " by repeating the last column/row");

  TempPath temp(path);
  AVFormatContext* raw_out = nullptr;
  int r = avformat_alloc_output_context2(&raw_out, nullptr, "mp4", temp.temp().c_str());
  if (r < 0 || !raw_out) throw RuntimeError(path + ": cannot set up the MP4 muxer: " + av_error(r));
  std::unique_ptr<AVFormatContext, FormatOutputDelete> out(raw_out);
  AVStream* stream = avformat_new_stream(out.get(), nullptr);
  std::unique_ptr<AVCodecContext, CodecDelete> enc(avcodec_alloc_context3(codec));
  if (!stream || !enc) throw RuntimeError(path + ": out of memory setting up the encoder");

  const AVRational rate = av_d2q(fps, 100000);  // 16 -> 16/1, 29.97002997 -> 30000/1001
  enc->width = width;
  enc->height = height;
  enc->time_base = av_inv_q(rate);
  enc->framerate = rate;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  // Tagged BT.709 limited range, and converted with that matrix below, so players agree.
  enc->color_range = AVCOL_RANGE_MPEG;
  enc->colorspace = AVCOL_SPC_BT709;
  enc->color_primaries = AVCOL_PRI_BT709;
  enc->color_trc = AVCOL_TRC_BT709;
  if (out->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* codec_options = nullptr;
  if (h264) {
    av_dict_set(&codec_options, "crf", std::to_string(options.h264_crf).c_str(), 0);
    av_dict_set(&codec_options, "preset", "medium", 0);
  } else {
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * 2;
  }
  r = avcodec_open2(enc.get(), codec, &codec_options);
  av_dict_free(&codec_options);
  if (r < 0) throw RuntimeError(path + ": cannot open the " + codec->name + " encoder: " + av_error(r));
  r = avcodec_parameters_from_context(stream->codecpar, enc.get());
  if (r < 0) throw RuntimeError(path + ": " + av_error(r));
  stream->time_base = enc->time_base;
  stream->avg_frame_rate = rate;
  if (!comment.empty()) av_dict_set(&out->metadata, "comment", comment.c_str(), 0);

  r = avio_open(&out->pb, temp.temp().c_str(), AVIO_FLAG_WRITE);
  if (r < 0) throw RuntimeError(path + ": cannot open for writing: " + av_error(r));
  AVDictionary* mux_options = nullptr;
  av_dict_set(&mux_options, "movflags", "+faststart", 0);  // index first: plays while downloading
  r = avformat_write_header(out.get(), &mux_options);
  av_dict_free(&mux_options);
  if (r < 0) throw RuntimeError(path + ": cannot write the MP4 header: " + av_error(r));

  std::unique_ptr<SwsContext, SwsDelete> sws(sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height,
                                                            AV_PIX_FMT_YUV420P, SWS_BICUBIC | SWS_ACCURATE_RND,
                                                            nullptr, nullptr, nullptr));
  if (!sws) throw RuntimeError(path + ": cannot set up the RGB to YUV conversion");
  sws_setColorspaceDetails(sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(SWS_CS_ITU709), 0, 0,
                           1 << 16, 1 << 16);
  FramePtr frame(av_frame_alloc());
  PacketPtr packet(av_packet_alloc());
  if (!frame || !packet) throw RuntimeError(path + ": out of memory");
  frame->format = enc->pix_fmt;
  frame->width = width;
  frame->height = height;
  r = av_frame_get_buffer(frame.get(), 0);
  if (r < 0) throw RuntimeError(path + ": " + av_error(r));

  std::vector<uint8_t> padded(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  for (int64_t t = 0; t < frames.count; ++t) {
    const uint8_t* rgb = frames.frame(t);
    if (width != frames.width || height != frames.height) {
      const size_t row = static_cast<size_t>(frames.width) * 3;
      for (int y = 0; y < height; ++y) {
        const uint8_t* src = rgb + static_cast<size_t>(std::min(y, frames.height - 1)) * row;
        uint8_t* dst = padded.data() + static_cast<size_t>(y) * static_cast<size_t>(width) * 3;
        std::copy(src, src + row, dst);
        if (width != frames.width) std::copy(src + row - 3, src + row, dst + row);
      }
      rgb = padded.data();
    }
    r = av_frame_make_writable(frame.get());
    if (r < 0) throw RuntimeError(path + ": " + av_error(r));
    const uint8_t* src[4] = {rgb, nullptr, nullptr, nullptr};
    const int src_stride[4] = {width * 3, 0, 0, 0};
    sws_scale(sws.get(), src, src_stride, 0, height, frame->data, frame->linesize);
    frame->pts = t;
    encode(enc.get(), frame.get(), stream, out.get(), packet.get(), path);
  }
  encode(enc.get(), nullptr, stream, out.get(), packet.get(), path);
  r = av_write_trailer(out.get());
  if (r < 0) throw RuntimeError(path + ": cannot finish the MP4: " + av_error(r));
  r = avio_closep(&out->pb);
  if (r < 0) throw RuntimeError(path + ": cannot close the file: " + av_error(r));
  temp.commit();
}

Rgb8Frames read_with_ffmpeg(const std::string& path, int64_t max_frames) {
  Input in = open_input(path);
  AVStream* st = in.fmt->streams[in.stream];
  std::unique_ptr<AVCodecContext, CodecDelete> dec(avcodec_alloc_context3(in.decoder));
  if (!dec) throw RuntimeError(path + ": out of memory setting up the decoder");
  int r = avcodec_parameters_to_context(dec.get(), st->codecpar);
  if (r < 0) throw LoadError(path, "bad codec parameters: " + av_error(r));
  r = avcodec_open2(dec.get(), in.decoder, nullptr);
  if (r < 0) throw LoadError(path, std::string("cannot open the ") + in.decoder->name + " decoder: " + av_error(r));

  Rgb8Frames f;
  f.fps = stream_fps(st);
  RgbConverter rgb(f, path);
  FramePtr frame(av_frame_alloc());
  PacketPtr packet(av_packet_alloc());
  if (!frame || !packet) throw RuntimeError(path + ": out of memory");
  const auto full = [&] { return max_frames > 0 && f.count >= max_frames; };
  // Sends one packet (null: drain) and converts the frames it yields.
  const auto decode = [&](const AVPacket* p) {
    int e = avcodec_send_packet(dec.get(), p);
    if (e < 0 && e != AVERROR_EOF)
      throw LoadError(path, "truncated or corrupt video data after frame " + std::to_string(f.count) + ": " + av_error(e));
    while (!full() && (e = avcodec_receive_frame(dec.get(), frame.get())) >= 0) {
      rgb.append(frame.get());
      av_frame_unref(frame.get());
    }
    if (!full() && e != AVERROR(EAGAIN) && e != AVERROR_EOF)
      throw LoadError(path, "cannot decode frame " + std::to_string(f.count) + ": " + av_error(e));
  };
  int64_t packets = 0;
  while (!full() && (r = av_read_frame(in.fmt.get(), packet.get())) >= 0) {
    if (packet->stream_index == in.stream) {
      ++packets;
      try {
        if (packet->flags & AV_PKT_FLAG_CORRUPT)  // libavformat marks a packet cut short by the end of the file
          throw LoadError(path, "truncated or corrupt: packet " + std::to_string(packets - 1) + " is incomplete");
        decode(packet.get());
      } catch (...) {
        av_packet_unref(packet.get());
        throw;
      }
    }
    av_packet_unref(packet.get());
  }
  if (!full() && r < 0 && r != AVERROR_EOF)
    throw LoadError(path, "cannot read past frame " + std::to_string(f.count) + " (truncated or corrupt): " + av_error(r));
  if (!full()) decode(nullptr);
  if (f.count == 0) throw LoadError(path, "holds no decodable video frames");
  // Packets, not frames: an edit list may legitimately hide frames the index counts.
  if (!full() && st->nb_frames > 0 && packets < st->nb_frames)
    throw LoadError(path, "truncated: the file ends after " + std::to_string(packets) + " of the " +
                              std::to_string(st->nb_frames) + " frames its index lists");
  return f;
}

VideoInfo probe_with_ffmpeg(const std::string& path, bool count_frames) {
  Input in = open_input(path);
  const AVStream* st = in.fmt->streams[in.stream];
  VideoInfo info;
  info.format = format_name(in.fmt.get());
  info.codec = avcodec_get_name(st->codecpar->codec_id);
  info.width = st->codecpar->width;
  info.height = st->codecpar->height;
  info.fps = stream_fps(st);
  info.frame_count = st->nb_frames;
  if (info.frame_count <= 0 && count_frames) {
    // No index (WebM, GIF): count the stream's packets without decoding them.
    PacketPtr packet(av_packet_alloc());
    if (!packet) throw RuntimeError(path + ": out of memory");
    int64_t n = 0;
    int r;
    while ((r = av_read_frame(in.fmt.get(), packet.get())) >= 0) {
      if (packet->stream_index == in.stream) ++n;
      av_packet_unref(packet.get());
    }
    if (r != AVERROR_EOF) throw LoadError(path, "cannot read past packet " + std::to_string(n) + ": " + av_error(r));
    info.frame_count = n;
  }
  const AVDictionaryEntry* tag = nullptr;
  while ((tag = av_dict_get(in.fmt->metadata, "", tag, AV_DICT_IGNORE_SUFFIX)))
    info.metadata.emplace_back(tag->key, tag->value);
  for (const char* key : {"comment", "description"}) {
    const AVDictionaryEntry* e = av_dict_get(in.fmt->metadata, key, nullptr, 0);
    if (e && e->value[0] != '\0') {
      info.parameters = e->value;
      break;
    }
  }
  return info;
}

}  // namespace genvis::io::video_detail
