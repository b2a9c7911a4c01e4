package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.Arrays;
import org.bytedeco.javacpp.Pointer;

/**
 * Decode attention for one request over plain (not paged) K/V tensors: q {@code [numQoHeads, headDim]}, k and v
 * {@code [kvLen, numKvHeads, headDim]} (NHD) or {@code [numKvHeads, kvLen, headDim]} (HND), out like q, lse
 * {@code [numQoHeads]} F32 (contiguous) or null. Same math as {@link BatchDecodeWithPagedKvCache} with one
 * request.
 *
 * <p>Checked on the host before the launch: every tensor open, on q's device, of q's dtype, of the shapes above
 * with a contiguous last dimension; k and v of equal shapes and strides; head counts (numQoHeads a multiple of
 * numKvHeads); sizes that fit the native int fields; the stream's device. The native layer then checks dtype,
 * head dim and alignment against what the backend supports. A CUDA-graph replay skips all of these (no host code
 * runs at replay): captured tensors must stay open and keep their shapes.
 *
 * <p>Threads: static and stateless; concurrent runs are safe when their outputs are distinct.
 */
public final class SingleDecode {
  private static final CoreAccess CORE = Access.core();

  private SingleDecode() {}

  /**
   * Runs with default options on the default stream.
   *
   * @param q the query, [numQoHeads, headDim]
   * @param k the keys, [kvLen, numKvHeads, headDim] (NHD) or [numKvHeads, kvLen, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [numQoHeads, headDim], written by the call
   * @param lse float32 [numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param layout the KV layout (NHD or HND)
   */
  public static void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, KvLayout layout) {
    run(q, k, v, out, lse, layout, AttentionOptions.defaults(), null);
  }

  /**
   * Decode attention of one request: out[h, :] attends over every key of k and v with query head h (and lse[h] when lse
   * is not null). Queued on stream (null = default stream) for CUDA; complete on return for the CPU backend.
   *
   * @param q the query, [numQoHeads, headDim]
   * @param k the keys, [kvLen, numKvHeads, headDim] (NHD) or [numKvHeads, kvLen, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [numQoHeads, headDim], written by the call
   * @param lse float32 [numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param layout the KV layout (NHD or HND)
   * @param options the attention variant (soft cap, window, sm scale, RoPE)
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   */
  public static void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, KvLayout layout,
      AttentionOptions options, Stream stream) {
    Checks.open(q, "q");
    Checks.open(k, "k");
    Checks.open(v, "v");
    Checks.open(out, "out");
    Checks.notNull(layout, "layout");
    Checks.notNull(options, "options");
    Device device = q.device();
    Checks.check(q.dim() == 2, "q.dim()", "2 ([numQoHeads, headDim])", q.dim());
    Checks.check(k.dim() == 3, "k.dim()",
        layout == KvLayout.NHD ? "3 ([kvLen, numKvHeads, headDim])" : "3 ([numKvHeads, kvLen, headDim])", k.dim());
    Checks.shape(v, "v", k.shape());
    Checks.check(Arrays.equals(v.strides(), k.strides()), "v.strides", "k.strides " + Arrays.toString(k.strides()),
        Arrays.toString(v.strides()));
    Checks.shape(out, "out", q.shape());
    DType dtype = q.dtype();
    for (Tensor t : new Tensor[] {k, v, out}) {
      String name = t == k ? "k" : t == v ? "v" : "out";
      Checks.dtype(t, name, dtype);
      Checks.device(t, name, device);
      Checks.lastDimContiguous(t, name);
    }
    Checks.lastDimContiguous(q, "q");
    boolean nhd = layout == KvLayout.NHD;
    Checks.check(q.size(0) <= Integer.MAX_VALUE, "q.size(0) (numQoHeads)", "<= 2^31-1", q.size(0));
    Checks.check(q.size(1) <= Integer.MAX_VALUE, "q.size(1) (headDim)", "<= 2^31-1", q.size(1));
    int numQoHeads = (int) q.size(0);
    int headDim = (int) q.size(1);
    long kvLen = k.size(nhd ? 0 : 1);
    long kvHeads = k.size(nhd ? 1 : 0);
    Checks.check(kvLen <= Integer.MAX_VALUE, "kvLen", "<= 2^31-1", kvLen);
    Checks.check(kvHeads >= 1 && kvHeads <= Integer.MAX_VALUE, "numKvHeads", "in [1, 2^31-1]", kvHeads);
    int numKvHeads = (int) kvHeads;
    Checks.check(k.size(2) == headDim, "k.size(2)", "q's head dim " + headDim, k.size(2));
    Checks.check(numQoHeads % numKvHeads == 0, "numQoHeads", "a multiple of numKvHeads = " + numKvHeads, numQoHeads);
    Checks.lse(lse, device, numQoHeads);
    Checks.stream(stream, device);
    if (device.isCuda()) {
      // A head dim outside the ahead-of-time set is compiled (or loaded from the cache) here, with its log line.
      Decoding.prepareDecode(device, dtype, headDim, options, DecodePath.CUDA_CORES);
    }
    try (Native.Pins pins = new Native.Pins();
        Fi4j.fi4j_decode_args args = new Fi4j.fi4j_decode_args()) {
      args.num_qo_heads(numQoHeads)
          .dtype(CORE.code(dtype))
          .q(CORE.pointer(q, pins))
          .q_stride_n(numQoHeads * q.stride(0))
          .q_stride_h(q.stride(0))
          .o(CORE.pointer(out, pins))
          .o_stride_n(numQoHeads * out.stride(0))
          .o_stride_h(out.stride(0))
          .lse(lse == null ? null : CORE.pointer(lse, pins))
          .single_kv_len((int) kvLen)
          .num_work(0)
          .path(0)
          .workspace(null)
          .workspace_bytes(0);
      args.kv()
          .k(kvLen == 0 ? null : CORE.pointer(k, pins))
          .v(kvLen == 0 ? null : CORE.pointer(v, pins))
          .page_stride(0)
          .token_stride(k.stride(nhd ? 0 : 1))
          .head_stride(k.stride(nhd ? 1 : 0))
          .num_pages(kvLen == 0 ? 0 : 1)
          .page_size((int) Math.max(1, kvLen))
          .num_kv_heads(numKvHeads)
          .head_dim(headDim)
          .dtype(CORE.code(dtype))
          .kv_indptr(null)
          .kv_indices(null)
          .kv_last_page_len(null)
          .batch_size(1)
          .num_indices(0);
      Decoding.fillOptions(args.options(), options);
      Pointer s = stream == null ? null : CORE.pointer(stream, pins);
      Native.check(Fi4j.fi4j_batch_decode(CORE.code(device), args, s));
    }
  }
}
