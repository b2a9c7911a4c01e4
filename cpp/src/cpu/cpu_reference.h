// The CPU reference backend: straightforward loops with float32 dot products and float64 softmax sums.
// It is the oracle of the GPU tests and the backend of programs running without a GPU. Inputs are host memory
// and have been validated (index arrays included) by the caller.
#pragma once

#include "fi4j/attention/params.h"

namespace fi4j {
namespace cpu {

void batch_decode(const DecodeParams& p);
void append_paged_kv(const AppendParams& p);

}  // namespace cpu
}  // namespace fi4j
