#include "moe/hooks.h"

#include <algorithm>
#include <limits>

#include "autograd/ops.h"
#include "core/error.h"

namespace moegrad {

RouterIntervention restrict_experts(std::vector<int64_t> allowed, std::vector<int64_t> layers) {
  MOEGRAD_CHECK(!allowed.empty(), "restrict_experts: the allowed set is empty");
  return [allowed = std::move(allowed), layers = std::move(layers)](int64_t layer,
                                                                    const Variable& logits) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), layer) == layers.end())
      return logits;
    const int64_t e = logits.size(-1);
    std::vector<double> mask(size_t(e), -std::numeric_limits<double>::infinity());
    for (int64_t a : allowed) {
      MOEGRAD_CHECK(a >= 0 && a < e, "restrict_experts: expert ", a, " out of range for ", e,
                    " experts");
      mask[size_t(a)] = 0.0;
    }
    Tensor m = from_vector(mask, {e}).to(logits.dtype()).to(logits.device());
    return logits + Variable(m);
  };
}

}  // namespace moegrad
