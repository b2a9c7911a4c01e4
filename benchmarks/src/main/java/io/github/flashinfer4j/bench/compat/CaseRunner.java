package io.github.flashinfer4j.bench.compat;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.AttentionMask;
import io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache;
import io.github.flashinfer4j.attention.BatchPrefillWithPagedKvCache;
import io.github.flashinfer4j.attention.BatchPrefillWithRaggedKvCache;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKvCache;
import io.github.flashinfer4j.attention.SingleDecode;
import io.github.flashinfer4j.attention.SinglePrefill;
import io.github.flashinfer4j.safetensors.SafetensorsDType;
import io.github.flashinfer4j.safetensors.SafetensorsFile;
import io.github.flashinfer4j.safetensors.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runs one case of a golden-layout file through the flashinfer4j API and returns its outputs ({@code o},
 * {@code lse}) as raw safetensors data (inputs are loaded with {@link SafetensorsFile#load}, straight to the
 * device): batch decode (paged), single decode, batch prefill (paged and ragged) and
 * single prefill, with the case's mask ({@code causal}, or {@code custom_mask}: the tensor of that name, one byte
 * per element, requests' {@code [qoLen, kvLen]} blocks concatenated) and options. Ops that flashinfer4j does not
 * implement yet are {@link CaseParams.Unsupported}; a configuration the device cannot run (prefill on CUDA until
 * its kernel lands) surfaces as the API's {@link io.github.flashinfer4j.UnsupportedConfigurationException}.
 */
final class CaseRunner {
  /** Ops of the golden layout that flashinfer4j has no implementation of yet (no Java API). */
  static final String[] NOT_YET = {"merge_state", "merge_states"};

  private final Device device;
  private final SafetensorsFile file;

  /** One output: raw little-endian bytes with their dtype and shape, for SafetensorsWriter. */
  record Output(SafetensorsDType dtype, long[] shape, ByteBuffer bytes) {}

  CaseRunner(Device device, SafetensorsFile file) {
    this.device = device;
    this.file = file;
  }

  /** The outputs of case {@code name}, field name to data. */
  Map<String, Output> run(String name, CaseParams p) {
    String op = p.op();
    switch (op) {
      case "batch_decode_paged":
        return batchDecodePaged(name, p);
      case "single_decode":
        return singleDecode(name, p);
      case "batch_prefill_paged":
        return batchPrefillPaged(name, p);
      case "batch_prefill_ragged":
        return batchPrefillRagged(name, p);
      case "single_prefill":
        return singlePrefill(name, p);
      default:
        if (Arrays.asList(NOT_YET).contains(op)) {
          throw new CaseParams.Unsupported(op + " is not implemented in flashinfer4j yet");
        }
        throw new CaseParams.Unsupported("unknown op '" + op + "'");
    }
  }

  /** The head counts and head dim every op's case names. */
  private record Heads(int qo, int kv, int dim) {
    static Heads of(CaseParams p) {
      return new Heads(p.integer("num_qo_heads"), p.integer("num_kv_heads"), p.integer("head_dim"));
    }
  }

  /** Runs an op that writes o and lse, given both (see {@link #poisonedRun}). */
  @FunctionalInterface
  private interface Op {
    void run(Tensor out, Tensor lse);
  }

  private Map<String, Output> batchDecodePaged(String name, CaseParams p) {
    DType dtype = p.dtype();
    Heads h = Heads.of(p);
    int pageSize = p.integer("page_size");
    TensorInfo q = entry(name, "q");
    expectShape(name, "q", q, -1, h.qo(), h.dim());
    try (Tensor qT = upload(name, "q", dtype, q);
        Tensor kT = upload(name, "k_cache", dtype, entry(name, "k_cache"));
        Tensor vT = upload(name, "v_cache", dtype, entry(name, "v_cache"));
        PagedKvCache cache = PagedKvCache.of(kT, vT, p.layout());
        PageTable table = pageTable(name, pageSize);
        BatchDecodeWithPagedKvCache decode = new BatchDecodeWithPagedKvCache(device)) {
      return poisonedRun(dtype, new long[] {q.shape()[0], h.qo(), h.dim()}, (out, lse) -> {
        decode.plan(table, h.qo(), h.kv(), h.dim(), pageSize, dtype, p.options());
        decode.run(qT, cache, out, lse);
      });
    }
  }

  private Map<String, Output> singleDecode(String name, CaseParams p) {
    DType dtype = p.dtype();
    KvLayout layout = p.layout();
    Heads h = Heads.of(p);
    TensorInfo q = entry(name, "q");
    expectShape(name, "q", q, h.qo(), h.dim());
    TensorInfo k = keys(name, layout, h);
    try (Tensor qT = upload(name, "q", dtype, q);
        Tensor kT = upload(name, "k", dtype, k);
        Tensor vT = upload(name, "v", dtype, entry(name, "v"))) {
      return poisonedRun(dtype, new long[] {h.qo(), h.dim()},
          (out, lse) -> SingleDecode.run(qT, kT, vT, out, lse, layout, p.options(), null));
    }
  }

  private Map<String, Output> batchPrefillPaged(String name, CaseParams p) {
    DType dtype = p.dtype();
    Heads h = Heads.of(p);
    int pageSize = p.integer("page_size");
    TensorInfo q = entry(name, "q");
    expectShape(name, "q", q, -1, h.qo(), h.dim());
    int[] qoIndptr = ints(name, "qo_indptr");
    AttentionMask mask = mask(name, p);
    try (Tensor qT = upload(name, "q", dtype, q);
        Tensor kT = upload(name, "k_cache", dtype, entry(name, "k_cache"));
        Tensor vT = upload(name, "v_cache", dtype, entry(name, "v_cache"));
        PagedKvCache cache = PagedKvCache.of(kT, vT, p.layout());
        PageTable table = pageTable(name, pageSize);
        BatchPrefillWithPagedKvCache prefill = new BatchPrefillWithPagedKvCache(device)) {
      return poisonedRun(dtype, new long[] {q.shape()[0], h.qo(), h.dim()}, (out, lse) -> {
        prefill.plan(qoIndptr, table, h.qo(), h.kv(), h.dim(), dtype, mask, p.options(), null);
        prefill.run(qT, cache, out, lse);
      });
    }
  }

  private Map<String, Output> batchPrefillRagged(String name, CaseParams p) {
    DType dtype = p.dtype();
    KvLayout layout = p.layout();
    Heads h = Heads.of(p);
    TensorInfo q = entry(name, "q");
    expectShape(name, "q", q, -1, h.qo(), h.dim());
    TensorInfo k = keys(name, layout, h);
    int[] qoIndptr = ints(name, "qo_indptr");
    int[] kvIndptr = ints(name, "kv_indptr");
    AttentionMask mask = mask(name, p);
    try (Tensor qT = upload(name, "q", dtype, q);
        Tensor kT = upload(name, "k", dtype, k);
        Tensor vT = upload(name, "v", dtype, entry(name, "v"));
        BatchPrefillWithRaggedKvCache prefill = new BatchPrefillWithRaggedKvCache(device, layout, null)) {
      return poisonedRun(dtype, new long[] {q.shape()[0], h.qo(), h.dim()}, (out, lse) -> {
        prefill.plan(qoIndptr, kvIndptr, h.qo(), h.kv(), h.dim(), dtype, mask, p.options(), null);
        prefill.run(qT, kT, vT, out, lse);
      });
    }
  }

  private Map<String, Output> singlePrefill(String name, CaseParams p) {
    DType dtype = p.dtype();
    KvLayout layout = p.layout();
    Heads h = Heads.of(p);
    TensorInfo q = entry(name, "q");
    expectShape(name, "q", q, -1, h.qo(), h.dim());
    TensorInfo k = keys(name, layout, h);
    AttentionMask mask = mask(name, p);
    try (Tensor qT = upload(name, "q", dtype, q);
        Tensor kT = upload(name, "k", dtype, k);
        Tensor vT = upload(name, "v", dtype, entry(name, "v"))) {
      return poisonedRun(dtype, new long[] {q.shape()[0], h.qo(), h.dim()},
          (out, lse) -> SinglePrefill.run(qT, kT, vT, out, lse, layout, mask, p.options(), null));
    }
  }

  /**
   * Allocates o ({@code dtype}, {@code oShape}) and lse (F32, oShape without its last dim), poisons both (0xff
   * bytes read as NaN, so anything the op leaves unwritten shows), runs the op, waits for the device and returns
   * both.
   */
  private Map<String, Output> poisonedRun(DType dtype, long[] oShape, Op op) {
    try (Tensor out = Tensor.empty(device, dtype, oShape);
        Tensor lse = Tensor.empty(device, DType.F32, Arrays.copyOf(oShape, oShape.length - 1))) {
      out.fillBytes(0xff);
      lse.fillBytes(0xff);
      op.run(out, lse);
      device.synchronize();
      return outputs(out, lse);
    }
  }

  /** The case's page table: {@code kv_indptr}, {@code kv_indices}, {@code kv_last_page_len}. */
  private PageTable pageTable(String name, int pageSize) {
    return PageTable.of(device, pageSize, ints(name, "kv_indptr"), ints(name, "kv_indices"),
        ints(name, "kv_last_page_len"));
  }

  /** The case's contiguous keys {@code k}: [len, hkv, dim] (NHD) or [hkv, len, dim] (HND), any len. */
  private TensorInfo keys(String name, KvLayout layout, Heads h) {
    TensorInfo k = entry(name, "k");
    if (layout == KvLayout.NHD) {
      expectShape(name, "k", k, -1, h.kv(), h.dim());
    } else {
      expectShape(name, "k", k, h.kv(), -1, h.dim());
    }
    return k;
  }

  /**
   * The prefill mask of a case: {@code custom_mask} (true: the tensor {@code <case>.custom_mask}, U8 or BOOL, one
   * element per (request, row, key), nonzero = keep) replaces {@code causal}, as in FlashInfer and SPEC.md.
   */
  private AttentionMask mask(String name, CaseParams p) {
    if (!p.flag("custom_mask")) {
      return AttentionMask.causal(p.flag("causal"));
    }
    TensorInfo e = entry(name, "custom_mask");
    if (e.dtype() != SafetensorsDType.U8 && e.dtype() != SafetensorsDType.BOOL) {
      throw new IllegalArgumentException(name + ".custom_mask must be U8 or BOOL (one element per byte), got "
          + e.dtype());
    }
    ByteBuffer bytes = io(() -> file.bytes(e.name()));
    boolean[] keep = new boolean[bytes.remaining()];
    for (int i = 0; i < keep.length; i++) {
      keep[i] = bytes.get(i) != 0;
    }
    return AttentionMask.custom(keep);
  }

  // ---- helpers ----

  private TensorInfo entry(String name, String field) {
    String key = name + "." + field;
    if (!file.contains(key)) {
      throw new IllegalArgumentException("case " + name + " has no tensor " + key);
    }
    return file.info(key);
  }

  private int[] ints(String name, String field) {
    TensorInfo e = entry(name, field);
    if (e.dtype() != SafetensorsDType.I32) {
      throw new IllegalArgumentException(name + "." + field + " must be I32, got " + e.dtype());
    }
    try (Tensor t = io(() -> file.load(e.name(), Device.cpu()))) {
      return t.toIntArray();
    }
  }

  private static void expectShape(String name, String field, TensorInfo e, long... expected) {
    long[] s = e.shape();
    boolean ok = s.length == expected.length;
    for (int i = 0; ok && i < s.length; i++) {
      ok = expected[i] < 0 || s[i] == expected[i];
    }
    if (!ok) {
      StringBuilder want = new StringBuilder("[");
      for (int i = 0; i < expected.length; i++) {
        want.append(i == 0 ? "" : ", ").append(expected[i] < 0 ? "*" : Long.toString(expected[i]));
      }
      throw new IllegalArgumentException(name + "." + field + " has shape " + Arrays.toString(s)
          + ", the case's parameters need " + want.append(']'));
    }
  }

  private Tensor upload(String name, String field, DType dtype, TensorInfo e) {
    SafetensorsDType want = SafetensorsDType.of(dtype);
    if (e.dtype() != want) {
      throw new IllegalArgumentException(name + "." + field + " is " + e.dtype() + " but the case's dtype is "
          + want);
    }
    return io(() -> file.load(e.name(), device));
  }

  private static Map<String, Output> outputs(Tensor out, Tensor lse) {
    Map<String, Output> m = new LinkedHashMap<>();
    m.put("o", download(out));
    m.put("lse", download(lse));
    return m;
  }

  private static Output download(Tensor t) {
    ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(t.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
    if (t.byteSize() > 0) {
      t.copyTo(b);
    }
    return new Output(SafetensorsDType.of(t.dtype()), t.shape(), b.flip());
  }

  /** A read of the input file; an I/O failure fails the case (an error, not a crash of the run). */
  @FunctionalInterface
  private interface Read<T> {
    T get() throws IOException;
  }

  private static <T> T io(Read<T> read) {
    try {
      return read.get();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

}
