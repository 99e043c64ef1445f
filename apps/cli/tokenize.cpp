#include "commands.h"
#include "core/error.h"
#include "tokenizers/clip_tokenizer.h"
#include "tokenizers/prompt_weights.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace genvis::cli {
namespace {

// A float32 weight as the shortest decimal that reads back to it (1.2f prints 1.2, not 1.2000000476837158).
double display(float w) {
  char buf[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(w));
    if (std::strtof(buf, nullptr) == w) break;
  }
  return std::strtod(buf, nullptr);
}

}  // namespace

Command add_tokenize_command(CLI::App& app) {
  struct Options {
    std::string vocab, pad = "eos", prompt;
    bool weights = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Tokenize a prompt with the CLIP BPE tokenizer and print the ids as JSON "
                  "({\"ids\", \"padded\"}; with --weights also A1111 emphasis chunks and weights)");
  cmd->add_option("prompt", opts->prompt, "The prompt text")->required();
  cmd->add_option("--vocab", opts->vocab,
                  "OpenAI bpe_simple_vocab_16e6.txt.gz or a tokenizer/ folder with vocab.json and merges.txt "
                  "(default: $GENVIS_CLIP_VOCAB)");
  cmd->add_option("--pad", opts->pad, "Padding id after EOS: eos (SD1, CLIP-L) or zero (OpenCLIP, SDXL tokenizer_2)")
      ->check(CLI::IsMember({"eos", "zero"}));
  cmd->add_flag("--weights", opts->weights,
                "Parse A1111 emphasis ((word), [word], (word:1.2), BREAK) and print 77-token chunks with weights");
  return {cmd, [opts] {
    std::string vocab = opts->vocab;
    if (vocab.empty()) {
      const char* env = std::getenv("GENVIS_CLIP_VOCAB");
      if (env == nullptr || *env == '\0')
        throw UsageError("tokenize: no vocabulary; pass --vocab FILE|DIR or set GENVIS_CLIP_VOCAB");
      vocab = env;
    }
    const auto tok = tokenizers::CLIPTokenizer::load(vocab);
    const int64_t pad_id = opts->pad == "zero" ? 0 : tok.eos_id();
    nlohmann::ordered_json out;
    out["ids"] = tok.encode(opts->prompt);
    out["padded"] = tok.encode_padded(opts->prompt, pad_id);
    if (opts->weights) {
      tokenizers::ChunkOptions chunk_options;
      chunk_options.pad_id = pad_id;
      const auto wt = tokenizers::tokenize_weighted(tok, opts->prompt, chunk_options);
      nlohmann::ordered_json parsed = nlohmann::ordered_json::array();
      for (const auto& [text, weight] : tokenizers::parse_prompt_attention(opts->prompt))
        parsed.push_back({text, display(weight)});
      nlohmann::ordered_json weights = nlohmann::ordered_json::array();
      for (const auto& chunk : wt.weights) {
        nlohmann::ordered_json row = nlohmann::ordered_json::array();
        for (float w : chunk) row.push_back(display(w));
        weights.push_back(std::move(row));
      }
      out["parsed"] = parsed;
      out["chunks"] = wt.chunks;
      out["weights"] = weights;
      out["token_count"] = wt.token_count;
    }
    std::cout << out.dump() << "\n";
  }};
}

}  // namespace genvis::cli
