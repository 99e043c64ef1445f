// Textual-inversion tokens: where an embedding's name appears in a prompt, its vectors' ids.
//
//   EmbeddingTokens e;
//   e.add("genvis-style", tokenizer.encode("genvis-style"), /*first_id=*/49408, /*vectors=*/2);
//   e.splice(tokenizer.encode("a photo in genvis-style"))   // {320, 1125, 530, 49408, 49409}
//
// As AUTOMATIC1111 does, a name is matched on its BPE ids (so "genvis-style," matches too), the
// longest name first where several start alike. Names added as whole-text tokens (diffusers'
// added tokens such as "<cat-toy>") are instead cut out of the text before BPE, as transformers
// does, so "<cat-toy>," still matches although BPE would merge ">,". Ids first_id .. first_id + vectors - 1 name
// rows of the text encoder's added embeddings (CLIPTextEmbeddings::extra_token_embeddings).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace genvis::tokenizers {

class EmbeddingTokens {
public:
  struct Entry {
    std::string name;
    std::vector<int64_t> name_ids;  // the name's BPE ids
    int64_t first_id = 0, vectors = 0;
    bool whole_text = false;  // matched in the text before BPE
    std::vector<int64_t> ids() const;  // first_id .. first_id + vectors - 1
  };
  struct Match {
    const Entry* entry;
    size_t length;  // name ids consumed
  };

  // A later entry with the same name replaces the earlier one. UsageError for an empty name or
  // vectors < 1.
  void add(const std::string& name, std::vector<int64_t> name_ids, int64_t first_id, int64_t vectors,
           bool whole_text = false);
  // `text` cut at every whole-text name (leftmost, longest first): text pieces and entries.
  struct Piece {
    std::string text;
    const Entry* entry = nullptr;  // set: this piece is the entry's name
  };
  std::vector<Piece> split_text(const std::string& text) const;
  // The embedding whose name ids start at ids[pos], if any (longest first).
  std::optional<Match> match(const std::vector<int64_t>& ids, size_t pos) const;
  // ids with every name run replaced by its vector ids.
  std::vector<int64_t> splice(const std::vector<int64_t>& ids) const;
  const Entry* find(const std::string& name) const;
  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

private:
  std::vector<Entry> entries_;
  std::unordered_map<int64_t, std::vector<size_t>> by_first_id_;  // first name id -> entries, longest first
  void reindex();
};

}  // namespace genvis::tokenizers
