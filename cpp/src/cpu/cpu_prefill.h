// The CPU reference of prefill attention (single, batch ragged, batch paged): the oracle of the CUDA prefill
// kernels, with the numerics of the decode reference (float32 dot products, float64 softmax sums). Inputs are
// host memory and have been validated (index arrays and mask offsets included) by prefill_ops.cpp.
#pragma once

#include "fi4j/attention/prefill_params.h"

namespace fi4j {
namespace cpu {

void batch_prefill(const PrefillParams& p);

}  // namespace cpu
}  // namespace fi4j
