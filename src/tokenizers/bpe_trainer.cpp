#include "tokenizers/bpe_trainer.h"

#include "core/error.h"
#include "core/file.h"
#include "tokenizers/clip_tokenizer.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

namespace genvis::tokenizers {

namespace {

// GPT-2's printable stand-in for every byte, as UTF-8, in vocabulary order.
std::vector<std::pair<uint8_t, std::string>> byte_symbols() {
  std::vector<std::pair<uint8_t, std::string>> out;
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  const auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
  };
  for (int b = 0; b < 256; ++b)
    if (printable[b]) out.emplace_back(static_cast<uint8_t>(b), utf8(static_cast<uint32_t>(b)));
  uint32_t n = 0;
  for (int b = 0; b < 256; ++b)
    if (!printable[b]) out.emplace_back(static_cast<uint8_t>(b), utf8(256 + n++));
  return out;
}

}  // namespace

BPEVocabulary train_bpe(const std::vector<std::string>& texts, const BPETrainOptions& options) {
  if (options.vocab_size < 514) throw UsageError("BPE vocab_size must be >= 514 (512 byte symbols + 2 special tokens)");
  if (options.min_frequency < 1) throw UsageError("BPE min_frequency must be >= 1");
  const auto bytes = byte_symbols();
  std::array<std::string, 256> symbol_of;
  for (const auto& [b, s] : bytes) symbol_of[b] = s;

  // Word frequencies over the pre-tokens CLIPTokenizer will see.
  std::map<std::vector<std::string>, int64_t> counts;
  for (const auto& text : texts) {
    for (const auto& token : clip_pre_tokenize(clip_clean_text(text))) {
      std::vector<std::string> word;
      for (unsigned char c : token) word.push_back(symbol_of[c]);
      if (word.empty()) continue;
      word.back() += "</w>";
      ++counts[word];
    }
  }
  std::vector<std::pair<std::vector<std::string>, int64_t>> words(counts.begin(), counts.end());

  BPEVocabulary v;
  for (const auto& [b, s] : bytes) v.tokens.push_back(s);
  for (const auto& [b, s] : bytes) v.tokens.push_back(s + "</w>");
  const int64_t max_merges = options.vocab_size - 514;
  while (static_cast<int64_t>(v.merges.size()) < max_merges) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [word, n] : words)
      for (size_t i = 0; i + 1 < word.size(); ++i) pairs[{word[i], word[i + 1]}] += n;
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_n = 0;
    for (const auto& [pair, n] : pairs)  // map order: the first of equal counts is the smallest pair
      if (n > best_n) best = &pair, best_n = n;
    if (!best || best_n < options.min_frequency) break;
    const auto [a, b] = *best;
    v.merges.emplace_back(a, b);
    v.tokens.push_back(a + b);
    for (auto& [word, n] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == a && word[i + 1] == b) {
          merged.push_back(a + b);
          ++i;
        } else {
          merged.push_back(word[i]);
        }
      }
      word = std::move(merged);
    }
  }
  v.tokens.push_back("<|startoftext|>");
  v.tokens.push_back("<|endoftext|>");
  return v;
}

void save_tokenizer_folder(const BPEVocabulary& vocab, const std::string& folder) {
  std::filesystem::create_directories(folder);
  nlohmann::ordered_json ids = nlohmann::ordered_json::object();
  for (size_t i = 0; i < vocab.tokens.size(); ++i) ids[vocab.tokens[i]] = static_cast<int64_t>(i);
  if (ids.size() != vocab.tokens.size()) throw RuntimeError("BPE vocabulary has repeated tokens");
  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : vocab.merges) merges += a + " " + b + "\n";
  write_file_atomic(folder + "/vocab.json", ids.dump());
  write_file_atomic(folder + "/merges.txt", merges);
  const nlohmann::ordered_json special = {{"bos_token", "<|startoftext|>"},
                                          {"eos_token", "<|endoftext|>"},
                                          {"pad_token", "<|endoftext|>"},
                                          {"unk_token", "<|endoftext|>"}};
  write_file_atomic(folder + "/special_tokens_map.json", special.dump(2));
  nlohmann::ordered_json config = special;
  config["tokenizer_class"] = "CLIPTokenizer";
  config["model_max_length"] = CLIPTokenizer::kMaxLength;
  config["do_lower_case"] = true;
  write_file_atomic(folder + "/tokenizer_config.json", config.dump(2));
}

}  // namespace genvis::tokenizers
