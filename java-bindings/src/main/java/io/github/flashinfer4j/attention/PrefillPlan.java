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
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * What a prefill wrapper's plan() fixed: the batch (host arrays and their copies in the device's memory), the
 * head configuration, dtype, mask and options, and the native plan's outputs. Shared by the ragged and paged
 * wrappers; package-private. Owns its device copies (closed when the wrapper replans or closes).
 */
final class PrefillPlan implements AutoCloseable {
  private static final CoreAccess CORE = Access.core();

  final Device device;
  final int batch;
  final int numQoHeads;
  final int numKvHeads;
  final int headDim;
  final DType dtype;
  final AttentionMask.Kind maskKind;
  final AttentionOptions options;
  final int nnzQo;
  final int[] kvLens;
  final int numWork;
  final int ctaTileQ;
  private final Tensor qoIndptr;
  private final Tensor kvIndptr;      // ragged only
  private final Tensor maskBits;      // custom mask only
  private final Tensor maskIndptr;
  private final long maskBytes;

  private PrefillPlan(Device device, int[] qo, int[] kvLens, int numQoHeads, int numKvHeads, int headDim,
      DType dtype, AttentionMask mask, AttentionOptions options, int numWork, int ctaTileQ, Tensor qoIndptr,
      Tensor kvIndptr, Tensor maskBits, Tensor maskIndptr, long maskBytes) {
    this.device = device;
    this.batch = kvLens.length;
    this.numQoHeads = numQoHeads;
    this.numKvHeads = numKvHeads;
    this.headDim = headDim;
    this.dtype = dtype;
    this.maskKind = mask.kind();
    this.options = options;
    this.nnzQo = qo[batch];
    this.kvLens = kvLens;
    this.numWork = numWork;
    this.ctaTileQ = ctaTileQ;
    this.qoIndptr = qoIndptr;
    this.kvIndptr = kvIndptr;
    this.maskBits = maskBits;
    this.maskIndptr = maskIndptr;
    this.maskBytes = maskBytes;
  }

  /** Checks a CSR offset array of batch + 1 entries: starts at 0, non-decreasing. */
  static void checkIndptr(int[] indptr, String name) {
    Checks.notNull(indptr, name);
    Checks.check(indptr.length >= 1, name + ".length", ">= 1 (batch + 1)", indptr.length);
    Checks.check(indptr[0] == 0, name + "[0]", "0", indptr[0]);
    for (int b = 1; b < indptr.length; b++) {
      Checks.check(indptr[b] >= indptr[b - 1], name + "[" + b + "]",
          ">= " + name + "[" + (b - 1) + "] = " + indptr[b - 1] + " (non-decreasing)", indptr[b]);
    }
  }

  static void checkHeads(int numQoHeads, int numKvHeads, int headDim) {
    Checks.check(numKvHeads >= 1, "numKvHeads", ">= 1", numKvHeads);
    Checks.check(numQoHeads >= 1, "numQoHeads", ">= 1", numQoHeads);
    Checks.check(numQoHeads % numKvHeads == 0, "numQoHeads", "a multiple of numKvHeads = " + numKvHeads, numQoHeads);
    Checks.check(headDim >= 1, "headDim", ">= 1", headDim);
  }

  /**
   * Validates, runs the native plan into {@code workspace} and uploads the batch. {@code kvIndptr} is the ragged
   * offsets (null for a paged cache, whose {@code pageSize} is then > 0). The caller has checked qoIndptr and
   * kvLens (same batch).
   */
  static PrefillPlan create(Device device, Tensor workspace, int[] qoIndptr, int[] kvIndptr, int[] kvLens,
      int pageSize, int numQoHeads, int numKvHeads, int headDim, DType dtype, AttentionMask mask,
      AttentionOptions options, Stream stream) {
    Checks.notNull(dtype, "dtype");
    Checks.notNull(mask, "mask");
    Checks.notNull(options, "options");
    checkHeads(numQoHeads, numKvHeads, headDim);
    Checks.stream(stream, device);
    int batch = kvLens.length;
    int[] qoLens = new int[batch];
    for (int b = 0; b < batch; b++) {
      qoLens[b] = qoIndptr[b + 1] - qoIndptr[b];
    }
    PackedMask packed = mask.packFor(qoLens, kvLens, "mask");
    Native.check(Fi4j.fi4j_prefill_supported(CORE.code(device), CORE.code(dtype), headDim, numQoHeads, numKvHeads));
    if (device.isCuda()) {
      // a head dim outside the ahead-of-time set: compile (or load) its kernel now, not in run()
      Decoding.preparePrefill(device, dtype, headDim, options);
    }
    Pointer streamPtr = stream == null ? null : CORE.pointer(stream);
    int numWork;
    int ctaTileQ;
    try (Fi4j.fi4j_prefill_plan p = new Fi4j.fi4j_prefill_plan();
        IntPointer hQo = new IntPointer(qoIndptr);
        IntPointer hKv = new IntPointer(batch == 0 ? new int[1] : kvLens)) {
      p.batch_size(batch)
          .num_qo_heads(numQoHeads)
          .num_kv_heads(numKvHeads)
          .head_dim(headDim)
          .page_size(pageSize)
          .mask_mode(mask.kind().code())
          .window_left(options.windowLeft())
          .qo_indptr_host(hQo)
          .kv_len_host(hKv)
          .num_work(0)
          .cta_tile_q(0)
          .workspace_bytes(0);
      Native.check(Fi4j.fi4j_batch_prefill_plan(CORE.code(device), p, CORE.pointer(workspace), workspace.byteSize(),
          streamPtr));
      numWork = p.num_work();
      ctaTileQ = p.cta_tile_q();
    }
    Tensor dQo = null;
    Tensor dKv = null;
    Tensor dBits = null;
    Tensor dMaskIndptr = null;
    try {
      dQo = Tensor.fromInts(device, qoIndptr, qoIndptr.length);
      if (kvIndptr != null) {
        dKv = Tensor.fromInts(device, kvIndptr, kvIndptr.length);
      }
      long maskBytes = 0;
      if (packed != null) {
        dBits = uploadBytes(device, packed.bitsNoCopy());
        dMaskIndptr = Tensor.fromInts(device, packed.indptrNoCopy(), packed.indptrNoCopy().length);
        maskBytes = packed.bitsNoCopy().length;
      }
      return new PrefillPlan(device, qoIndptr.clone(), kvLens.clone(), numQoHeads, numKvHeads, headDim, dtype, mask,
          options, numWork, ctaTileQ, dQo, dKv, dBits, dMaskIndptr, maskBytes);
    } catch (RuntimeException e) {
      CORE.closeAll(dQo, dKv, dBits, dMaskIndptr);
      throw e;
    }
  }

  /** A U8 tensor holding {@code bytes} (at least one byte, so that an empty mask still has an address). */
  static Tensor uploadBytes(Device device, byte[] bytes) {
    Tensor t = Tensor.empty(device, DType.U8, Math.max(1, bytes.length));
    try {
      byte[] padded = bytes.length == 0 ? new byte[1] : bytes;
      t.copyFrom(java.nio.ByteBuffer.wrap(padded));
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
    return t;
  }

  /** Checks q, out ({@code [nnzQo, numQoHeads, headDim]}), lse ({@code [nnzQo, numQoHeads]} F32) and the stream. */
  void checkQueries(Tensor q, Tensor out, Tensor lse, Stream stream) {
    checkRows(q, "q");
    checkRows(out, "out");
    Checks.lse(lse, device, nnzQo, numQoHeads);
    Checks.stream(stream, device);
  }

  private void checkRows(Tensor t, String name) {
    Checks.tensor(t, name, dtype, device, nnzQo, numQoHeads, headDim);
  }

  /** Fills everything of the native arguments but the keys and values, pinning what it points to. */
  void fill(Fi4j.fi4j_prefill_args args, Tensor q, Tensor out, Tensor lse, Tensor workspace,
      Native.Pins pins) {
    CORE.checkOpen(qoIndptr);
    args.dtype(CORE.code(dtype))
        .batch_size(batch)
        .num_qo_heads(numQoHeads)
        .num_kv_heads(numKvHeads)
        .head_dim(headDim)
        .qo_indptr(CORE.pointer(qoIndptr, pins))
        .nnz_qo(nnzQo)
        .kv_indptr(kvIndptr == null ? null : CORE.pointer(kvIndptr, pins))
        .mask_mode(maskKind.code())
        .custom_mask(maskBits == null ? null : CORE.pointer(maskBits, pins))
        .mask_indptr(maskIndptr == null ? null : CORE.pointer(maskIndptr, pins))
        .custom_mask_bytes(maskBytes)
        .num_work(numWork)
        .cta_tile_q(ctaTileQ)
        .workspace(CORE.pointer(workspace, pins))
        .workspace_bytes(workspace.byteSize());
    fillQueries(args, q, out, lse, pins);
    Decoding.fillOptions(args.options(), options);
  }

  /** Fills the native arguments' q, out and lse (pointers and strides), pinning them. */
  static void fillQueries(Fi4j.fi4j_prefill_args args, Tensor q, Tensor out, Tensor lse, Native.Pins pins) {
    args.q(CORE.pointer(q, pins))
        .q_stride_n(q.stride(0))
        .q_stride_h(q.stride(1))
        .o(CORE.pointer(out, pins))
        .o_stride_n(out.stride(0))
        .o_stride_h(out.stride(1))
        .lse(lse == null ? null : CORE.pointer(lse, pins));
  }

  /**
   * Fills the native arguments' contiguous keys and values ({@code nnzKv} tokens in {@code layout}; null pointers
   * when there are none), pinning them.
   */
  static void fillRaggedKv(Fi4j.fi4j_prefill_args args, Tensor k, Tensor v, KvLayout layout, int nnzKv,
      Native.Pins pins) {
    int n = layout == KvLayout.NHD ? 0 : 1;
    args.kv_storage(Fi4j.FI4J_KV_RAGGED)
        .k(nnzKv == 0 ? null : CORE.pointer(k, pins))
        .k_stride_n(k.stride(n))
        .k_stride_h(k.stride(1 - n))
        .v(nnzKv == 0 ? null : CORE.pointer(v, pins))
        .v_stride_n(v.stride(n))
        .v_stride_h(v.stride(1 - n))
        .nnz_kv(nnzKv);
  }

  @Override
  public void close() {
    CORE.closeAll(qoIndptr, kvIndptr, maskBits, maskIndptr);
  }
}
