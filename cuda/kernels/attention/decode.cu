// Ahead-of-time instantiations of the CUDA-core batch decode kernel (decode.cuh) and the split-KV merge
// (decode_merge.cuh), their typed launchers (one per instantiation, handed to the kernel registry) and
// launch_batch_decode, which resolves them on every call (for the harnesses).
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in the translation unit that defines them.
#include "fi4j/attention/decode.cuh"
#include "fi4j/attention/decode_launch.cuh"
#include "fi4j/attention/decode_merge.cuh"
#include "fi4j/attention/launch.h"

namespace fi4j {
namespace decode {

namespace {

template <typename T, int D, bool kCap, bool kRope>
cudaError_t launch_cuda_cores_typed(const DecodeParams& p, int items, cudaStream_t stream) {
  const auto kernel = batch_decode_kernel<T, D, kCap, kRope>;
  constexpr int kSmem = smem_bytes<D, kRope>();
  // Above the 48 KB default: opt in once per device (not a stream operation: legal inside graph capture).
  static std::atomic<unsigned long long> opted{0};  // one per instantiation
  const cudaError_t err = opt_in_smem(kernel, kSmem, opted);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(items), static_cast<unsigned>(p.kv.num_kv_heads));
  kernel<<<grid, kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

/// The merge of a split decode: grid (batch_size, head blocks). Programmatic dependent launch (sm_90+): the merge
/// is launched while the decode's last blocks still run.
template <typename T, int D>
cudaError_t launch_merge_typed(const DecodeParams& p, cudaStream_t stream, bool pdl) {
  const dim3 grid(static_cast<unsigned>(p.kv.batch_size),
                  static_cast<unsigned>(decode_merge::head_blocks(D, p.num_qo_heads, p.work.num_work,
                                                                  p.kv.batch_size)));
  const PdlLaunchConfig merge_launch(grid, dim3(decode_merge::kThreads), stream, pdl);
  return cudaLaunchKernelEx(&merge_launch.config, decode_merge::merge_kernel<T, D>, p);
}

}  // namespace

DecodeLaunchFn cuda_cores_launcher(DType dtype, int head_dim, bool soft_cap, bool rope) {
  return select_attention_config<DecodeLaunchFn>(
      dtype, head_dim, soft_cap, rope, nullptr, [](auto t, auto d, auto cap, auto r) -> DecodeLaunchFn {
        return &launch_cuda_cores_typed<typename decltype(t)::type, decltype(d)::value, decltype(cap)::value,
                                        decltype(r)::value>;
      });
}

cudaError_t launch_cuda_cores(const DecodeParams& p, int items, cudaStream_t stream) {
  const DecodeLaunchFn f = cuda_cores_launcher(p.dtype, p.kv.head_dim, p.variant.logits_soft_cap > 0.f,
                                               p.variant.pos_encoding == PosEncoding::RopeLlama);
  return f == nullptr ? cudaErrorNotSupported : f(p, items, stream);
}

}  // namespace decode

DecodeLaunchFn aot_decode_launcher(DType dtype, int head_dim, bool soft_cap, bool rope, DecodePath path) {
  return path == DecodePath::TensorCores ? decode::tensor_cores_launcher(dtype, head_dim, soft_cap, rope)
                                         : decode::cuda_cores_launcher(dtype, head_dim, soft_cap, rope);
}

DecodeMergeFn aot_decode_merger(DType dtype, int head_dim) {
  return select_dtype<DecodeMergeFn>(dtype, nullptr, [&](auto t) {
    return select_aot_head_dim<DecodeMergeFn>(head_dim, nullptr, [](auto d) -> DecodeMergeFn {
      return &decode::launch_merge_typed<typename decltype(t)::type, decltype(d)::value>;
    });
  });
}

cudaError_t run_aot_decode(DecodeLaunchFn launch, DecodeMergeFn merge, bool pdl, const DecodeParams& p,
                           cudaStream_t stream) {
  if (p.kv.batch_size == 0 || p.kv.num_kv_heads == 0) return cudaSuccess;
  const bool split = p.work.num_work > 0;
  const cudaError_t err = launch(p, split ? p.work.num_work : p.kv.batch_size, stream);
  if (err != cudaSuccess || !split) return err;
  return merge(p, stream, pdl);
}

cudaError_t launch_batch_decode(const DecodeParams& p, cudaStream_t stream) {
  // Refuse what has no kernel before looking at sizes, so that an empty batch reports it too.
  if (p.variant.pos_encoding != PosEncoding::None && p.variant.pos_encoding != PosEncoding::RopeLlama)
    return cudaErrorNotSupported;
  const DecodeLaunchFn launch = aot_decode_launcher(p.dtype, p.kv.head_dim, p.variant.logits_soft_cap > 0.f,
                                                    p.variant.pos_encoding == PosEncoding::RopeLlama, p.path);
  const DecodeMergeFn merge = aot_decode_merger(p.dtype, p.kv.head_dim);
  if (launch == nullptr || merge == nullptr) return cudaErrorNotSupported;
  bool pdl = false;
  if (p.work.num_work > 0) {
    const cudaError_t err = current_device_pdl(&pdl);
    if (err != cudaSuccess) return err;
  }
  return run_aot_decode(launch, merge, pdl, p, stream);
}

}  // namespace fi4j
