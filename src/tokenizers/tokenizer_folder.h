// The files of a CLIP BPE tokenizer folder (vocab.json, merges.txt and, when present,
// special_tokens_map.json and tokenizer_config.json) held in memory, so that a model folder that
// loaded its tokenizer can write it out again unchanged.
//
//   auto files = genvis::tokenizers::TokenizerFolder::read("models/x/tokenizer");
//   files.write("out/tokenizer");
#pragma once
#include <map>
#include <string>

namespace genvis::tokenizers {

struct TokenizerFolder {
  std::map<std::string, std::string> files;  // file name -> contents

  // LoadError naming the file when vocab.json or merges.txt is missing or a file is over 64 MiB.
  static TokenizerFolder read(const std::string& dir);
  // Creates `dir` and writes every file atomically.
  void write(const std::string& dir) const;
};

}  // namespace genvis::tokenizers
