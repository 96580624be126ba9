// Parameter initialisation as in HF's _init_weights: normal(0, initializer_range).
#pragma once
#include "core/random.h"
#include "core/tensor.h"

namespace moegrad {

struct InitOptions {
  Generator* gen = nullptr;  // null: zeros (the values are expected to be loaded)
  double std = 0.02;
  DType dtype = DType::F32;
};

Tensor init_normal(const Shape& shape, const InitOptions& init);

}  // namespace moegrad
