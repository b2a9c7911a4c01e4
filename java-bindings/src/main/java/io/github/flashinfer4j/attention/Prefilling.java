package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.Checks;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;

/** Checks and native-argument filling shared by the prefill wrappers, their plans and {@link SinglePrefill}. */
final class Prefilling {
  private static final CoreAccess CORE = Access.core();

  private Prefilling() {}

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
}
