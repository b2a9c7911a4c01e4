// Ahead-of-time instantiations of the CUDA-core batch decode kernel (decode.cuh) and the split-KV merge
// (decode_merge.cuh), and launch_batch_decode, which picks the path and the split.
// nvcc 13 gives explicitly instantiated __global__ templates internal linkage, so the kernels are instantiated
// and launched in the translation unit that defines them.
#include "fi4j/attention/decode.cuh"
#include "fi4j/attention/decode_launch.cuh"
#include "fi4j/attention/decode_merge.cuh"
#include "fi4j/attention/launch.h"

namespace fi4j {
namespace decode {

cudaError_t launch_cuda_cores(const DecodeParams& p, int items, cudaStream_t stream) {
  return dispatch_config(p, [&](auto t, auto d, auto cap, auto rope) -> cudaError_t {
    using T = typename decltype(t)::type;
    constexpr int D = decltype(d)::value;
    const auto kernel = batch_decode_kernel<T, D, decltype(cap)::value, decltype(rope)::value>;
    constexpr int kSmem = smem_bytes<D, decltype(rope)::value>();
    // Above the 48 KB default: opt in once per device (not a stream operation: legal inside graph capture).
    static std::atomic<unsigned long long> opted{0};  // one per instantiation of this generic lambda
    const cudaError_t err = opt_in_smem(kernel, kSmem, opted);
    if (err != cudaSuccess) return err;
    const dim3 grid(static_cast<unsigned>(items), static_cast<unsigned>(p.kv.num_kv_heads));
    kernel<<<grid, kThreads, kSmem, stream>>>(p);
    return cudaGetLastError();
  });
}

namespace {

/// Launches the merge of a split decode: grid (batch_size, head blocks).
cudaError_t launch_merge(const DecodeParams& p, cudaStream_t stream) {
  bool pdl = false;
  const cudaError_t err = current_device_pdl(&pdl);
  if (err != cudaSuccess) return err;
  auto launch = [&](auto t, auto d) -> cudaError_t {
    using T = typename decltype(t)::type;
    constexpr int D = decltype(d)::value;
    // Programmatic dependent launch (sm_90+): the merge is launched while the decode's last blocks still run.
    const dim3 grid(static_cast<unsigned>(p.kv.batch_size),
                    static_cast<unsigned>(decode_merge::head_blocks(D, p.num_qo_heads, p.work.num_work,
                                                                    p.kv.batch_size)));
    const PdlLaunchConfig merge_launch(grid, dim3(decode_merge::kThreads), stream, pdl);
    return cudaLaunchKernelEx(&merge_launch.config, decode_merge::merge_kernel<T, D>, p);
  };
  auto dims = [&](auto t) -> cudaError_t {
    switch (p.kv.head_dim) {
      case 64:
        return launch(t, std::integral_constant<int, 64>{});
      case 128:
        return launch(t, std::integral_constant<int, 128>{});
      case 256:
        return launch(t, std::integral_constant<int, 256>{});
      default:
        return cudaErrorNotSupported;
    }
  };
  return p.dtype == DType::F16 ? dims(TypeTag<__half>{}) : dims(TypeTag<__nv_bfloat16>{});
}

}  // namespace
}  // namespace decode

cudaError_t launch_batch_decode(const DecodeParams& p, cudaStream_t stream) {
  // Refuse what has no kernel before looking at sizes, so that an empty batch reports it too.
  const cudaError_t supported = decode::dispatch_config(p, [](auto, auto, auto, auto) { return cudaSuccess; });
  if (supported != cudaSuccess) return supported;
  if (p.kv.batch_size == 0 || p.kv.num_kv_heads == 0) return cudaSuccess;
  const bool split = p.work.num_work > 0;
  const int items = split ? p.work.num_work : p.kv.batch_size;
  const cudaError_t err = p.path == DecodePath::TensorCores ? decode::launch_tensor_cores(p, items, stream)
                                                            : decode::launch_cuda_cores(p, items, stream);
  if (err != cudaSuccess || !split) return err;
  return decode::launch_merge(p, stream);
}

}  // namespace fi4j
