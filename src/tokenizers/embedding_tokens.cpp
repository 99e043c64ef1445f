#include "tokenizers/embedding_tokens.h"

#include "core/error.h"

#include <algorithm>

namespace genvis::tokenizers {

std::vector<int64_t> EmbeddingTokens::Entry::ids() const {
  std::vector<int64_t> out(static_cast<size_t>(vectors));
  for (int64_t i = 0; i < vectors; ++i) out[static_cast<size_t>(i)] = first_id + i;
  return out;
}

void EmbeddingTokens::add(const std::string& name, std::vector<int64_t> name_ids, int64_t first_id, int64_t vectors,
                          bool whole_text) {
  if (name.empty() || name_ids.empty()) throw UsageError("textual inversion: an embedding needs a non-empty name");
  if (vectors < 1) throw UsageError("textual inversion: embedding '" + name + "' has no vectors");
  const Entry entry{name, std::move(name_ids), first_id, vectors, whole_text};
  const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
  if (it != entries_.end()) *it = entry;
  else entries_.push_back(entry);
  reindex();
}

void EmbeddingTokens::reindex() {
  by_first_id_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) by_first_id_[entries_[i].name_ids.front()].push_back(i);
  for (auto& [id, list] : by_first_id_)
    std::stable_sort(list.begin(), list.end(),
                     [&](size_t a, size_t b) { return entries_[a].name_ids.size() > entries_[b].name_ids.size(); });
}

std::vector<EmbeddingTokens::Piece> EmbeddingTokens::split_text(const std::string& text) const {
  std::vector<Piece> out;
  size_t from = 0;
  while (true) {
    size_t best = std::string::npos;
    const Entry* found = nullptr;
    for (const auto& e : entries_) {
      if (!e.whole_text) continue;
      const size_t at = text.find(e.name, from);
      if (at != std::string::npos && (at < best || (at == best && e.name.size() > found->name.size()))) {
        best = at;
        found = &e;
      }
    }
    if (!found) break;
    if (best > from) out.push_back({text.substr(from, best - from), nullptr});
    out.push_back({found->name, found});
    from = best + found->name.size();
  }
  if (from < text.size() || out.empty()) out.push_back({text.substr(from), nullptr});
  return out;
}

std::optional<EmbeddingTokens::Match> EmbeddingTokens::match(const std::vector<int64_t>& ids, size_t pos) const {
  const auto it = by_first_id_.find(ids[pos]);
  if (it == by_first_id_.end()) return std::nullopt;
  for (size_t i : it->second) {
    const auto& name = entries_[i].name_ids;
    if (pos + name.size() <= ids.size() && std::equal(name.begin(), name.end(), ids.begin() + static_cast<std::ptrdiff_t>(pos)))
      return Match{&entries_[i], name.size()};
  }
  return std::nullopt;
}

std::vector<int64_t> EmbeddingTokens::splice(const std::vector<int64_t>& ids) const {
  std::vector<int64_t> out;
  for (size_t pos = 0; pos < ids.size();) {
    if (const auto m = match(ids, pos)) {
      const auto v = m->entry->ids();
      out.insert(out.end(), v.begin(), v.end());
      pos += m->length;
    } else {
      out.push_back(ids[pos++]);
    }
  }
  return out;
}

const EmbeddingTokens::Entry* EmbeddingTokens::find(const std::string& name) const {
  const auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
  return it == entries_.end() ? nullptr : &*it;
}

}  // namespace genvis::tokenizers
