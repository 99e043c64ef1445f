#include "models/transformers_config_keys.h"

namespace genvis::models {

const std::set<std::string>& transformers_common_config_keys() {
  // PretrainedConfig.to_dict() of transformers 4.2x-4.5x; "dtype" is the newer name of torch_dtype.
  static const std::set<std::string> keys = {
      "model_type", "architectures", "transformers_version", "torch_dtype", "dtype", "return_dict",
      "output_hidden_states", "output_attentions", "torchscript", "use_bfloat16", "tf_legacy_loss", "pruned_heads",
      "tie_word_embeddings", "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder",
      "cross_attention_hidden_size", "add_cross_attention", "tie_encoder_decoder", "max_length", "min_length",
      "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k",
      "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
      "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
      "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
      "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "finetuning_task", "id2label",
      "label2id", "tokenizer_class", "prefix", "bos_token_id", "pad_token_id", "eos_token_id", "sep_token_id",
      "decoder_start_token_id", "task_specific_params", "problem_type", "gradient_checkpointing", "use_cache",
      "initializer_range", "initializer_factor"};
  return keys;
}

std::set<std::string> with_transformers_common_keys(std::set<std::string> own) {
  own.insert(transformers_common_config_keys().begin(), transformers_common_config_keys().end());
  return own;
}

}  // namespace genvis::models
