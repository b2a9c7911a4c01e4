// Host entry point of the family-neutral pseudo-random fill (cuda/kernels/common/fill.cu). Plain C++: no CUDA
// language extensions here. Neither allocates nor synchronises (capturable).
#pragma once

#include <cuda_runtime_api.h>

#include "fi4j/common/dtype.h"

namespace fi4j {

/// Fills n elements of an F16, BF16 or F32 buffer with hash-based uniform values in [-scale, scale].
cudaError_t launch_fill_random(void* ptr, DType dtype, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

}  // namespace fi4j
