#include "eval/routing_collect.h"

#include <algorithm>
#include <string>

#include "autograd/grad_mode.h"
#include "core/error.h"

namespace moegrad::eval {
namespace {

struct Window {
  int64_t begin = 0, length = 0;
  std::string document;
};

// Routes windows of one shard, all of one length, as one [B, T] batch.
void route(OlmoeForCausalLM& model, const data::TokenShard& shard, const std::vector<Window>& batch,
           Device device, bool keep_sequences, RoutingStats& stats) {
  if (batch.empty()) return;
  const int64_t T = batch[0].length, B = int64_t(batch.size());
  std::vector<int32_t> tokens(size_t(B * T));
  std::vector<std::string> languages, documents;
  for (int64_t b = 0; b < B; ++b) {
    shard.copy_tokens(batch[size_t(b)].begin, T, &tokens[size_t(b * T)]);
    languages.push_back(shard.language());
    documents.push_back(batch[size_t(b)].document);
  }
  std::vector<int64_t> ids(tokens.begin(), tokens.end());
  RouterHooks hooks;
  hooks.capture = stats.capture(languages, T, documents, keep_sequences);
  model.set_router_hooks(std::move(hooks));
  model.forward(from_vector(ids, {B, T}).to(device));
}

}  // namespace

void collect_routing(OlmoeForCausalLM& model, const std::vector<data::TokenShard>& shards,
                     const RoutingCollectOptions& options, RoutingStats& stats) {
  const OlmoeConfig& c = model.config();
  MOEGRAD_CHECK(stats.layers() == c.num_hidden_layers && stats.experts() == c.num_experts &&
                    stats.top_k() == c.num_experts_per_tok,
                "collect_routing: statistics of ", stats.layers(), " layers x ", stats.experts(),
                " experts (top-", stats.top_k(), ") for a model of ", c.num_hidden_layers, " x ",
                c.num_experts, " (top-", c.num_experts_per_tok, ")");
  MOEGRAD_CHECK(options.seq_len >= 1 && options.seq_len <= c.max_position_embeddings,
                "collect_routing: windows of ", options.seq_len,
                " tokens: must be from 1 to the model's max_position_embeddings, ",
                c.max_position_embeddings);
  MOEGRAD_CHECK(options.batch_size >= 1 && options.max_tokens >= 1,
                "collect_routing: batch_size and max_tokens must be positive");
  const Device device = model.device();
  NoGradGuard no_grad;
  for (const data::TokenShard& shard : shards) {
    MOEGRAD_CHECK(shard.vocab_size() <= c.vocab_size, shard.path(), ": vocabulary of ",
                  shard.vocab_size(), " tokens does not fit the model's vocab_size ",
                  c.vocab_size);
    int64_t routed = 0;
    std::vector<Window> batch;
    auto flush = [&] {
      route(model, shard, batch, device, options.keep_sequences, stats);
      batch.clear();
    };
    for (int64_t d = 0; d < shard.num_documents() && routed < options.max_tokens; ++d) {
      const auto [begin, end] = shard.document_range(d);
      for (int64_t w = begin; w < end && routed < options.max_tokens; w += options.seq_len) {
        const int64_t length = std::min({options.seq_len, end - w, options.max_tokens - routed});
        if (!batch.empty() && (batch[0].length != length ||
                               int64_t(batch.size()) == options.batch_size))
          flush();
        batch.push_back({w, length, shard.document_name(d)});
        routed += length;
      }
    }
    flush();
  }
  model.set_router_hooks({});
}

}  // namespace moegrad::eval
