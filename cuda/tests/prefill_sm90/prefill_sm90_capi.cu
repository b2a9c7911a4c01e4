// Test and benchmark entry point of the Hopper prefill kernel: a plain C function over raw pointers, built into
// a shared library that test_prefill_sm90.py loads with ctypes on the GPU machine.
// All variants overlap softmax with P V inside each consumer group (intra-warp-group pipelining).
//   variant 0: default tile, ping-pong, persistent          1: default tile, ping-pong, one block per item
//   2: alternative tile A, ping-pong, persistent             3: alternative tile B, ping-pong, persistent
//   4: default tile, no ping-pong, persistent
//   5: default tile, neither overlap nor ping-pong, one block per item (the plain reference schedule)
// Tile A: D=64: 3 consumers x kN 128 x 4 stages; D=128: kN 176 x 2 stages; D=256: kN 64 x 2 stages.
// Tile B: D=64: 2 consumers x kN 192 x 3 stages; D=128: kN 128 x 3 stages; D=256: the default.
#include <cuda_runtime.h>

#include "fi4j/attention/hopper/launch.cuh"

using namespace fi4j::hopper;

namespace {

template <int D>
struct AltTile;
template <>
struct AltTile<64> {
  using type = TileShape<64, 3, 128, 4>;
};
template <>
struct AltTile<128> {
  using type = TileShape<128, 2, 176, 2>;
};
template <>
struct AltTile<256> {
  using type = TileShape<256, 2, 64, 2>;
};
template <int D>
struct AltTileB;
template <>
struct AltTileB<64> {
  using type = TileShape<64, 2, 192, 3>;
};
template <>
struct AltTileB<128> {
  using type = TileShape<128, 2, 128, 3>;
};
template <>
struct AltTileB<256> {
  using type = DefaultTile<256>::type;
};

template <typename T, int D>
cudaError_t run(int variant, const PrefillSm90Args& a, cudaStream_t s) {
  using Def = typename DefaultTile<D>::type;
#ifndef FI4J_SM90_DEFAULT_ONLY
  switch (variant) {
    case 0: return prefill_sm90_launch<T, Def, true, true, true>(a, s);
    case 1: return prefill_sm90_launch<T, Def, true, true, false>(a, s);
    case 2: return prefill_sm90_launch<T, typename AltTile<D>::type, true, true, true>(a, s);
    case 3: return prefill_sm90_launch<T, typename AltTileB<D>::type, true, true, true>(a, s);
    case 4: return prefill_sm90_launch<T, Def, true, false, true>(a, s);
    case 5: return prefill_sm90_launch<T, Def, false, false, false>(a, s);
    default: return cudaErrorInvalidValue;
  }
#else
  return variant == 0 ? prefill_sm90_launch<T, Def, true, true, true>(a, s) : cudaErrorInvalidValue;
#endif
}

}  // namespace

extern "C" int fi4j_hopper_prefill(int dtype, int head_dim, int variant, const void* q, long long q_sn,
                                   long long q_sh, const void* k, long long k_sn, long long k_sh, const void* v,
                                   long long v_sn, long long v_sh, void* o, long long o_sn, long long o_sh,
                                   float* lse, const int* qo_indptr, const int* kv_indptr, int batch_size,
                                   int nnz_qo, int nnz_kv, int num_qo_heads, int num_kv_heads, float sm_scale,
                                   int causal, void* stream) {
  PrefillSm90Args a{q, q_sn, q_sh, k, k_sn, k_sh, v, v_sn, v_sh, o, o_sn, o_sh, lse, qo_indptr, kv_indptr,
                    batch_size, nnz_qo, nnz_kv, num_qo_heads, num_kv_heads, sm_scale, causal};
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  cudaError_t e;
  if (dtype == 1) {
    switch (head_dim) {
      case 64: e = run<__nv_bfloat16, 64>(variant, a, s); break;
      case 128: e = run<__nv_bfloat16, 128>(variant, a, s); break;
      case 256: e = run<__nv_bfloat16, 256>(variant, a, s); break;
      default: e = cudaErrorInvalidValue;
    }
  } else if (dtype == 0) {
    switch (head_dim) {
      case 64: e = run<__half, 64>(variant, a, s); break;
      case 128: e = run<__half, 128>(variant, a, s); break;
      case 256: e = run<__half, 256>(variant, a, s); break;
      default: e = cudaErrorInvalidValue;
    }
  } else {
    e = cudaErrorInvalidValue;
  }
  return static_cast<int>(e);
}

extern "C" const char* fi4j_hopper_error_string(int e) { return cudaGetErrorString(static_cast<cudaError_t>(e)); }
