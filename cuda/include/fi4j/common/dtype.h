// Family-neutral basics of every kernel's parameters: the fixed-width integers (also under NVRTC, which has no
// <cstdint>), the element type enum and the 16-byte vector unit. No host API; compiles with nvcc, NVRTC and the
// host compiler.
#pragma once

#ifdef __CUDACC_RTC__
typedef int int32_t;
typedef long long int64_t;
#else
#include <cstdint>
#endif

namespace fi4j {

/// Number of 16-bit elements in one 16-byte vector (a "chunk" of a head row): the unit of every K/V copy.
constexpr int kVecElems = 8;

/// Element type of q/k/v/o tensors (values match fi4j_dtype in the C API).
enum class DType : int32_t { F16 = 0, BF16 = 1, F32 = 2, I32 = 3, U8 = 4, FP8_E4M3 = 5, FP8_E5M2 = 6 };

}  // namespace fi4j
