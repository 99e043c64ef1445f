// Anchor so the layer library has a translation unit before its first tokenizer lands.
namespace genvis::tokenizers {}
