// Ahead-of-time instantiations of the tensor-core batch decode kernel (decode_tc.cuh) and its launcher.
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in this translation unit only.
#include "fi4j/attention/decode_launch.cuh"
#include "fi4j/attention/decode_tc.cuh"

namespace fi4j {
namespace decode {

cudaError_t launch_tensor_cores(const DecodeParams& p, int items, cudaStream_t stream) {
  return dispatch_config(p, [&](auto t, auto d, auto cap, auto rope) -> cudaError_t {
    using T = typename decltype(t)::type;
    constexpr int D = decltype(d)::value;
    const auto kernel = decode_tc::batch_decode_tc_kernel<T, D, decltype(cap)::value, decltype(rope)::value>;
    constexpr int kSmem = decode_tc::smem_bytes<D, decltype(rope)::value>();
    // Above the 48 KB default: opt in once per device (not a stream operation: legal inside graph capture).
    static std::atomic<unsigned long long> opted{0};  // one per instantiation of this generic lambda
    const cudaError_t err = opt_in_smem(kernel, kSmem, opted);
    if (err != cudaSuccess) return err;
    const dim3 grid(static_cast<unsigned>(items), static_cast<unsigned>(p.kv.num_kv_heads));
    kernel<<<grid, decode_tc::kThreads, kSmem, stream>>>(p);
    return cudaGetLastError();
  });
}

}  // namespace decode
}  // namespace fi4j
