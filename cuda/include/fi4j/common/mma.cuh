// Warp-level tensor-core helpers (sm_80+): ldmatrix, mma.sync m16n8k16 with fp32 accumulation, and packing of
// fp32 pairs into 16-bit operand registers. Fragment layouts follow the PTX ISA for m16n8k16 (row.col):
//   A (16x16, row-major): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
//   B (16x8, "col": k contiguous per column n): b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
//   C (16x8, fp32): c0,c1 = C[g][2t..2t+1], c2,c3 = C[g+8][2t..2t+1]
// with g = lane / 4 and t = lane % 4.
// The 16-bit types are vec.cuh's half_t / bfloat16_t (the CUDA types under nvcc, storage structs under NVRTC),
// so that this header also compiles at run time.
#pragma once

#include "fi4j/common/vec.cuh"

namespace fi4j {

/// Shared-memory address of a generic pointer into shared memory, as ldmatrix and cp.async want it.
__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// 2^x by the special-function unit (ex2.approx.ftz: ~2 ulp, denormal results flush to 0; 2^-inf = 0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// Stores 16 bytes to shared memory (p must be 16-byte aligned).
__device__ __forceinline__ void st_shared_v16(void* p, const uint4& v) { *reinterpret_cast<uint4*>(p) = v; }

/// Loads four 8x8 16-bit matrices; lanes 8i..8i+7 give the row addresses of matrix i, register i receives it.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

/// ldmatrix_x4 with each matrix transposed (rows in shared memory become the columns of the fragment).
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

/// Per-type tensor-core operations: the 16-bit type T selects the mma and the fp32 -> T packing.
template <typename T>
struct Mma;

template <>
struct Mma<half_t> {
  /// c += a * b on a 16x8x16 tile, fp16 inputs, fp32 accumulation.
  static __device__ __forceinline__ void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  /// Packs (lo, hi) to a register of two fp16, round to nearest even; also returns the rounded values.
  static __device__ __forceinline__ unsigned pack(float lo, float hi, float& lo_r, float& hi_r) {
#if FI4J_OWN_16BIT_TYPES
    const unsigned u = float2_to_f16x2(lo, hi);
    const float2 f = f16x2_to_float2(u);
    lo_r = f.x;
    hi_r = f.y;
    return u;
#else
    const __half2 h = __floats2half2_rn(lo, hi);
    const float2 f = __half22float2(h);
    lo_r = f.x;
    hi_r = f.y;
    return *reinterpret_cast<const unsigned*>(&h);
#endif
  }
};

template <>
struct Mma<bfloat16_t> {
  /// c += a * b on a 16x8x16 tile, bf16 inputs, fp32 accumulation.
  static __device__ __forceinline__ void mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  /// Packs (lo, hi) to a register of two bf16, round to nearest even; also returns the rounded values.
  static __device__ __forceinline__ unsigned pack(float lo, float hi, float& lo_r, float& hi_r) {
#if FI4J_OWN_16BIT_TYPES
    const unsigned u = float2_to_bf16x2(lo, hi);
#else
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    const unsigned u = *reinterpret_cast<const unsigned*>(&h);
#endif
    lo_r = __uint_as_float(u << 16);
    hi_r = __uint_as_float(u & 0xffff0000u);
    return u;
  }
};

/// Splits the fp32 pair (lo, hi) into two 16-bit pairs with x ~= x_hi + x_lo (16+ significant bits in all, where
/// one 16-bit value keeps 8 or 11): the tensor-core path multiplies both parts so that rounding an fp32 operand
/// (softmax weights, RoPE-rotated q and k) costs no more accuracy than the CUDA-core path's fp32 math.
template <typename T>
__device__ __forceinline__ void split_pack(float lo, float hi, unsigned& big, unsigned& small) {
  float lo_r, hi_r, unused0, unused1;
  big = Mma<T>::pack(lo, hi, lo_r, hi_r);
  small = Mma<T>::pack(lo - lo_r, hi - hi_r, unused0, unused1);
}

}  // namespace fi4j
