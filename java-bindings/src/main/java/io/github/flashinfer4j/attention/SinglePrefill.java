package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.KernelConfig;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.CudaGraph;
import io.github.flashinfer4j.Flashinfer4j;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import org.bytedeco.javacpp.IntPointer;

/**
 * Prefill attention for one request over plain K/V tensors: q {@code [qoLen, numQoHeads, headDim]}, k and v
 * {@code [kvLen, numKvHeads, headDim]} (NHD) or {@code [numKvHeads, kvLen, headDim]} (HND; k and v may have
 * different strides), out like q, lse {@code [qoLen, numQoHeads]} F32 contiguous or null. The queries are the last
 * qoLen positions (bottom-right aligned); rows that see no key give 0 and LSE -inf. Same math as
 * {@link BatchPrefillWithRaggedKvCache} with one request; a custom mask is {@code qoLen x kvLen} booleans.
 *
 * <p>Stateless; calls may run concurrently on distinct outputs. A custom mask is packed and staged into the
 * device's memory for the call (on CUDA the call then waits for the stream before freeing it). Backends: the CPU
 * reference and CUDA (head dims 64, 128, 256 ahead of time; the other multiples of 16 up to 256 compiled at run
 * time on the first call of a configuration, or ahead of it by {@link Flashinfer4j#warmUp(KernelConfig...)}).
 *
 * <p>CUDA graphs: with {@link AttentionMask#none()} or {@link AttentionMask#causal()} a call launches one kernel and
 * can be captured ({@link CudaGraph#capture}); replays read whatever q, k and v hold then. With a custom mask a call
 * allocates, copies and waits, so a call made while its stream is capturing throws
 * {@link UnsupportedConfigurationException} before any CUDA work (the capture stays usable): capture
 * {@link BatchPrefillWithRaggedKvCache} with a batch of one instead, whose plan() stages the mask once.
 */
public final class SinglePrefill {
  private static final CoreAccess CORE = Access.core();

  private SinglePrefill() {}

  /**
   * Runs with default options on the default stream.
   *
   * @param q the queries, [qoLen, numQoHeads, headDim]
   * @param k the keys, [kvLen, numKvHeads, headDim] (NHD) or [numKvHeads, kvLen, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [qoLen, numQoHeads, headDim], written by the call
   * @param lse float32 [qoLen, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param layout the KV layout (NHD or HND)
   * @param mask which keys each query row may see
   */
  public static void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, KvLayout layout,
      AttentionMask mask) {
    run(q, k, v, out, lse, layout, mask, AttentionOptions.defaults(), null);
  }

  /**
   * Prefill attention of one request under mask: out[i, h, :] for every query row i and query head h (and lse[i, h]
   * when lse is not null). Queued on stream (null = default stream) for CUDA; complete on return for the CPU backend.
   *
   * @param q the queries, [qoLen, numQoHeads, headDim]
   * @param k the keys, [kvLen, numKvHeads, headDim] (NHD) or [numKvHeads, kvLen, headDim] (HND)
   * @param v the values, shaped as k
   * @param out the output, [qoLen, numQoHeads, headDim], written by the call
   * @param lse float32 [qoLen, numQoHeads], the base-2 log-sum-exp, written by the call; may be null
   * @param layout the KV layout (NHD or HND)
   * @param mask which keys each query row may see
   * @param options the attention variant (soft cap, window, sm scale, RoPE)
   * @param stream the stream to queue the work on, or null for the device's default stream (ignored by the CPU backend)
   */
  public static void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, KvLayout layout, AttentionMask mask,
      AttentionOptions options, Stream stream) {
    Checks.open(q, "q");
    Checks.open(k, "k");
    Checks.open(v, "v");
    Checks.open(out, "out");
    Checks.notNull(layout, "layout");
    Checks.notNull(mask, "mask");
    Checks.notNull(options, "options");
    Device device = q.device();
    DType dtype = q.dtype();
    Checks.check(q.dim() == 3, "q.dim()", "3 ([qoLen, numQoHeads, headDim])", q.dim());
    boolean nhd = layout == KvLayout.NHD;
    Checks.check(k.dim() == 3, "k.dim()", nhd ? "3 ([kvLen, numKvHeads, headDim])" : "3 ([numKvHeads, kvLen, headDim])",
        k.dim());
    Checks.shape(v, "v", k.shape());
    Checks.shape(out, "out", q.shape());
    for (Tensor t : new Tensor[] {k, v, out}) {
      String name = t == k ? "k" : t == v ? "v" : "out";
      Checks.dtype(t, name, dtype);
      Checks.device(t, name, device);
      Checks.lastDimContiguous(t, name);
    }
    Checks.lastDimContiguous(q, "q");
    long qoLen = q.size(0);
    long kvLen = k.size(nhd ? 0 : 1);
    Checks.check(qoLen <= Integer.MAX_VALUE, "qoLen", "<= 2^31-1", qoLen);
    Checks.check(kvLen <= Integer.MAX_VALUE, "kvLen", "<= 2^31-1", kvLen);
    int numQoHeads = Math.toIntExact(q.size(1));
    int headDim = Math.toIntExact(q.size(2));
    int numKvHeads = Math.toIntExact(k.size(nhd ? 1 : 0));
    Checks.check(k.size(2) == headDim, "k.size(2)", "q's head dim " + headDim, k.size(2));
    Prefilling.checkHeads(numQoHeads, numKvHeads, headDim);
    Checks.lse(lse, device, qoLen, numQoHeads);
    Checks.stream(stream, device);
    PackedMask packed = mask.packFor(new int[] {(int) qoLen}, new int[] {(int) kvLen}, "mask");
    if (packed != null && device.isCuda()) {
      // staging the mask allocates and copies, which a capture refuses (and which would invalidate it): say so first
      try (Native.Pins pins = new Native.Pins(); IntPointer capturing = new IntPointer(1)) {
        Native.check(Fi4j.fi4j_stream_capturing(CORE.code(device), stream == null ? null : CORE.pointer(stream, pins),
            capturing));
        if (capturing.get() != 0) {
          throw new UnsupportedConfigurationException("SinglePrefill with a custom mask cannot be captured in a CUDA"
              + " graph: it stages the mask on every call; capture BatchPrefillWithRaggedKvCache with one request"
              + " instead (its plan() stages the mask once)");
        }
      }
    }
    if (device.isCuda()) {
      // a head dim outside the ahead-of-time set: compile (or load) its kernel before the call (once per process)
      Decoding.preparePrefill(device, dtype, headDim, options);
    }
    try (Native.Pins pins = new Native.Pins();
        Fi4j.fi4j_prefill_args args = new Fi4j.fi4j_prefill_args();
        Tensor bits = packed == null ? null : Prefilling.uploadBytes(device, packed.bitsNoCopy())) {
      args.dtype(CORE.code(dtype))
          .batch_size(1)
          .num_qo_heads(numQoHeads)
          .num_kv_heads(numKvHeads)
          .head_dim(headDim)
          .qo_indptr(null)
          .nnz_qo((int) qoLen)
          .kv_indptr(null)
          .mask_mode(mask.kind().code())
          .custom_mask(bits == null ? null : CORE.pointer(bits, pins))
          .mask_indptr(null)
          .custom_mask_bytes(packed == null ? 0 : packed.bitsNoCopy().length)
          .num_work(0)
          .cta_tile_q(0)
          .workspace(null)
          .workspace_bytes(0);
      Prefilling.fillQueries(args, q, out, lse, pins);
      Prefilling.fillRaggedKv(args, k, v, layout, (int) kvLen, pins);
      Decoding.fillOptions(args.options(), options);
      Native.check(Fi4j.fi4j_batch_prefill(CORE.code(device), args,
          stream == null ? null : CORE.pointer(stream, pins)));
      if (bits != null && device.isCuda()) {
        // the staged mask is freed on return; make sure the kernel has read it
        (stream == null ? Stream.defaultStream(device) : stream).synchronize();
      }
    }
  }
}
