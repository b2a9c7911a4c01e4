// Ahead-of-time instantiations of the tensor-core batch decode kernel (decode_tc.cuh) and their typed launchers.
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in this translation unit only.
#include "fi4j/attention/decode_launch.cuh"
#include "fi4j/attention/decode_tc.cuh"

namespace fi4j {
namespace decode {

namespace {

template <typename T, int D, bool kCap, bool kRope>
cudaError_t launch_tensor_cores_typed(const DecodeParams& p, int items, cudaStream_t stream) {
  const auto kernel = decode_tc::batch_decode_tc_kernel<T, D, kCap, kRope>;
  constexpr int kSmem = decode_tc::smem_bytes<D, kRope>();
  // Above the 48 KB default: opt in once per device (not a stream operation: legal inside graph capture).
  static std::atomic<unsigned long long> opted{0};  // one per instantiation
  const cudaError_t err = opt_in_smem(kernel, kSmem, opted);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(items), static_cast<unsigned>(p.kv.num_kv_heads));
  kernel<<<grid, decode_tc::kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

DecodeLaunchFn tensor_cores_launcher(DType dtype, int head_dim, bool soft_cap, bool rope) {
  return select_attention_config<DecodeLaunchFn>(
      dtype, head_dim, soft_cap, rope, nullptr, [](auto t, auto d, auto cap, auto r) -> DecodeLaunchFn {
        return &launch_tensor_cores_typed<typename decltype(t)::type, decltype(d)::value, decltype(cap)::value,
                                          decltype(r)::value>;
      });
}

cudaError_t launch_tensor_cores(const DecodeParams& p, int items, cudaStream_t stream) {
  const DecodeLaunchFn f = tensor_cores_launcher(p.dtype, p.kv.head_dim, p.variant.logits_soft_cap > 0.f,
                                                 p.variant.pos_encoding == PosEncoding::RopeLlama);
  return f == nullptr ? cudaErrorNotSupported : f(p, items, stream);
}

}  // namespace decode
}  // namespace fi4j
