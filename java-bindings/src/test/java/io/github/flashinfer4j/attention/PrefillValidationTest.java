package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.NoCudaDeviceException;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.internal.Access;
import io.github.flashinfer4j.internal.CoreAccess;
import io.github.flashinfer4j.internal.Native;
import io.github.flashinfer4j.lowlevel.Fi4j;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Every validation path of prefill, with its message: the Java API (camelCase names) and, behind it, the C API
 * (snake_case names, reached here through the low-level bindings as a C caller would).
 */
class PrefillValidationTest {
  private static final CoreAccess CORE = Access.core();

  private final Device cpu = Device.cpu();
  private final List<AutoCloseable> resources = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (int i = resources.size() - 1; i >= 0; i--) {
      resources.get(i).close();
    }
  }

  private <T extends AutoCloseable> T keep(T t) {
    resources.add(t);
    return t;
  }

  private static String invalid(Executable e) {
    return assertThrows(InvalidArgumentException.class, e).getMessage();
  }

  private static String unsupported(Executable e) {
    return assertThrows(UnsupportedConfigurationException.class, e).getMessage();
  }

  // ---- Java API ----

  @Test
  void raggedPlan() {
    BatchPrefillWithRaggedKvCache op = keep(new BatchPrefillWithRaggedKvCache(cpu));
    int[] qo = {0, 3, 7};
    int[] kv = {0, 4, 9};
    AttentionMask causal = AttentionMask.causal();
    assertEquals("qoIndptr must be non-null, got null", invalid(() -> op.plan(null, kv, 4, 2, 8, DType.F16, causal)));
    assertEquals("qoIndptr.length must be >= 1 (batch + 1), got 0",
        invalid(() -> op.plan(new int[0], kv, 4, 2, 8, DType.F16, causal)));
    assertEquals("qoIndptr[0] must be 0, got 1",
        invalid(() -> op.plan(new int[] {1, 3, 7}, kv, 4, 2, 8, DType.F16, causal)));
    assertEquals("qoIndptr[2] must be >= qoIndptr[1] = 3 (non-decreasing), got 2",
        invalid(() -> op.plan(new int[] {0, 3, 2}, kv, 4, 2, 8, DType.F16, causal)));
    assertEquals("kvIndptr must be non-null, got null", invalid(() -> op.plan(qo, null, 4, 2, 8, DType.F16, causal)));
    assertEquals("kvIndptr[1] must be >= kvIndptr[0] = 0 (non-decreasing), got -4",
        invalid(() -> op.plan(qo, new int[] {0, -4, 9}, 4, 2, 8, DType.F16, causal)));
    assertEquals("kvIndptr.length must be qoIndptr.length = 3, got 2",
        invalid(() -> op.plan(qo, new int[] {0, 4}, 4, 2, 8, DType.F16, causal)));
    assertEquals("numKvHeads must be >= 1, got 0", invalid(() -> op.plan(qo, kv, 4, 0, 8, DType.F16, causal)));
    assertEquals("numQoHeads must be >= 1, got 0", invalid(() -> op.plan(qo, kv, 0, 2, 8, DType.F16, causal)));
    assertEquals("numQoHeads must be a multiple of numKvHeads = 3, got 4",
        invalid(() -> op.plan(qo, kv, 4, 3, 8, DType.F16, causal)));
    assertEquals("headDim must be >= 1, got 0", invalid(() -> op.plan(qo, kv, 4, 2, 0, DType.F16, causal)));
    assertEquals("dtype must be non-null, got null", invalid(() -> op.plan(qo, kv, 4, 2, 8, null, causal)));
    assertEquals("mask must be non-null, got null", invalid(() -> op.plan(qo, kv, 4, 2, 8, DType.F16, null)));
    assertEquals("options must be non-null, got null",
        invalid(() -> op.plan(qo, kv, 4, 2, 8, DType.F16, causal, null, null)));
    assertEquals("dtype F32 is not supported for attention (supported: F16, BF16)",
        unsupported(() -> op.plan(qo, kv, 4, 2, 8, DType.F32, causal)));
    assertEquals("head_dim 7 is not supported by the CPU backend (even, 2..1024)",
        unsupported(() -> op.plan(qo, kv, 4, 2, 7, DType.F16, causal)));
    // custom masks are checked against the requests: 3 x 4 + 4 x 5 = 32 elements, 2 + 3 bytes packed
    assertEquals("mask.length must be the sum over requests of qoLen x kvLen = 32, got 31",
        invalid(() -> op.plan(qo, kv, 4, 2, 8, DType.F16, AttentionMask.custom(new boolean[31]))));
    PackedMask oneRequest = Masks.segmentPackbits(new boolean[12], new int[] {0, 12});
    assertEquals("mask.batchSize() must be the planned batch size 2, got 1",
        invalid(() -> op.plan(qo, kv, 4, 2, 8, DType.F16, AttentionMask.packed(oneRequest))));
    PackedMask tooShort = PackedMask.of(new byte[5], new int[] {0, 2, 4});
    assertEquals("mask.indptr()[2] must be >= indptr[1] + 3 = 5 (request 1's 4 x 5 mask), got 4",
        invalid(() -> op.plan(qo, kv, 4, 2, 8, DType.F16, AttentionMask.packed(tooShort))));
    op.plan(qo, kv, 4, 2, 8, DType.F16, AttentionMask.custom(new boolean[32]));
    op.close();
    assertThrows(IllegalStateException.class, () -> op.plan(qo, kv, 4, 2, 8, DType.F16, causal));
  }

  @Test
  void raggedRun() {
    BatchPrefillWithRaggedKvCache op = keep(new BatchPrefillWithRaggedKvCache(cpu));
    BatchPrefillWithRaggedKvCache hnd = keep(new BatchPrefillWithRaggedKvCache(cpu, KvLayout.HND, null));
    Tensor q = keep(Tensor.zeros(cpu, DType.F16, 7, 4, 8));
    Tensor k = keep(Tensor.zeros(cpu, DType.F16, 9, 2, 8));
    Tensor out = keep(Tensor.empty(cpu, DType.F16, 7, 4, 8));
    Tensor lse = keep(Tensor.empty(cpu, DType.F32, 7, 4));
    Tensor qb = keep(Tensor.zeros(cpu, DType.BF16, 7, 4, 8));
    Tensor q6 = keep(Tensor.zeros(cpu, DType.F16, 6, 4, 8));
    Tensor lseBad = keep(Tensor.empty(cpu, DType.F32, 7, 3));
    Tensor k8 = keep(Tensor.zeros(cpu, DType.F16, 8, 2, 8));
    Tensor kWide = keep(Tensor.zeros(cpu, DType.F16, 9, 2, 16));
    Tensor kStrided = Tensor.wrap(cpu, kWide.address(), DType.F16, new long[] {9, 2, 8}, new long[] {32, 16, 2});
    Tensor lseWide = keep(Tensor.empty(cpu, DType.F32, 7, 8));
    Tensor lseStrided = lseWide.narrow(1, 0, 4);
    assertThrows(IllegalStateException.class, () -> op.run(q, k, k, out, lse));
    op.plan(new int[] {0, 3, 7}, new int[] {0, 4, 9}, 4, 2, 8, DType.F16, AttentionMask.causal());
    hnd.plan(new int[] {0, 3, 7}, new int[] {0, 4, 9}, 4, 2, 8, DType.F16, AttentionMask.causal());
    assertEquals("q.dtype must be F16, got BF16", invalid(() -> op.run(qb, k, k, out, lse)));
    assertEquals("q.shape must be [7, 4, 8], got [6, 4, 8]", invalid(() -> op.run(q6, k, k, out, lse)));
    assertEquals("out.shape must be [7, 4, 8], got [6, 4, 8]", invalid(() -> op.run(q, k, k, q6, lse)));
    assertEquals("lse.shape must be [7, 4], got [7, 3]", invalid(() -> op.run(q, k, k, out, lseBad)));
    assertEquals("lse.dtype must be F32, got F16", invalid(() -> op.run(q, k, k, out, q)));
    assertEquals("lse must be contiguous, got strides [8, 1]", invalid(() -> op.run(q, k, k, out, lseStrided)));
    assertEquals("k.shape must be [9, 2, 8], got [8, 2, 8]", invalid(() -> op.run(q, k8, k, out, lse)));
    assertEquals("v.shape must be [9, 2, 8], got [8, 2, 8]", invalid(() -> op.run(q, k, k8, out, lse)));
    assertEquals("k.shape must be [2, 9, 8], got [9, 2, 8]", invalid(() -> hnd.run(q, k, k, out, lse)));
    assertEquals("k.stride(2) must be 1 (last dim contiguous), got 2", invalid(() -> op.run(q, kStrided, k, out, lse)));
    assertEquals("q must be non-null, got null", invalid(() -> op.run(null, k, k, out, lse)));
    op.run(q, k, k, out, null);
    k.close();
    assertThrows(IllegalStateException.class, () -> op.run(q, k, k, out, lse));
  }

  @Test
  void pagedPlanAndRun() {
    PageTable table = keep(PageTable.contiguous(cpu, 16, new int[] {5, 0, 17}));
    BatchPrefillWithPagedKvCache op = keep(new BatchPrefillWithPagedKvCache(cpu));
    PagedKvCache cache = keep(PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 3, 16, 2, 64));
    Tensor q = keep(Tensor.zeros(cpu, DType.BF16, 9, 8, 64));
    Tensor out = keep(Tensor.empty(cpu, DType.BF16, 9, 8, 64));
    int[] qo = {0, 5, 5, 9};
    AttentionMask causal = AttentionMask.causal();
    assertEquals("pageTable must be non-null, got null", invalid(() -> op.plan(qo, null, 8, 2, 64, DType.BF16, causal)));
    assertEquals("qoIndptr.length must be pageTable.batchSize() + 1 = 4, got 3",
        invalid(() -> op.plan(new int[] {0, 5, 9}, table, 8, 2, 64, DType.BF16, causal)));
    // request 2 has 4 queries over 17 keys, request 0 5 over 5: 25 + 0 + 68 = 93 mask elements
    assertEquals("mask.length must be the sum over requests of qoLen x kvLen = 93, got 90",
        invalid(() -> op.plan(qo, table, 8, 2, 64, DType.BF16, AttentionMask.custom(new boolean[90]))));
    assertThrows(IllegalStateException.class, () -> op.run(q, cache, out, null));
    op.plan(qo, table, 8, 2, 64, DType.BF16, causal);
    PagedKvCache c1 = keep(PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 3, 16, 1, 64));
    PagedKvCache c2 = keep(PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 2, 16, 2, 64));
    PagedKvCache c3 = keep(PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, 3, 16, 2, 64));
    PagedKvCache c4 = keep(PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 3, 8, 2, 64));
    PagedKvCache c5 = keep(PagedKvCache.allocate(cpu, DType.BF16, KvLayout.NHD, 3, 16, 2, 32));
    assertEquals("cache.numKvHeads must be the planned 2, got 1", invalid(() -> op.run(q, c1, out, null)));
    assertEquals("kvIndices[2] must be < the cache's page count 2, got 2", invalid(() -> op.run(q, c2, out, null)));
    assertEquals("cache.dtype must be the planned dtype BF16, got F16", invalid(() -> op.run(q, c3, out, null)));
    assertEquals("cache.pageSize must be the page table's page size 16, got 8", invalid(() -> op.run(q, c4, out, null)));
    assertEquals("cache.headDim must be the planned 64, got 32", invalid(() -> op.run(q, c5, out, null)));
    assertEquals("cache must be non-null, got null", invalid(() -> op.run(q, null, out, null)));
    op.run(q, cache, out, null);
    table.close();
    assertThrows(IllegalStateException.class, () -> op.run(q, cache, out, null));
    // one closed-handle policy (as decode's plan): a closed argument is an IllegalStateException naming it
    assertTrue(assertThrows(IllegalStateException.class, () -> op.plan(qo, table, 8, 2, 64, DType.BF16, causal))
        .getMessage().startsWith("pageTable is closed"));
  }

  @Test
  void singlePrefill() {
    Tensor q = keep(Tensor.zeros(cpu, DType.F16, 3, 4, 64));
    Tensor k = keep(Tensor.zeros(cpu, DType.F16, 10, 3, 64));
    Tensor k2 = keep(Tensor.zeros(cpu, DType.F16, 10, 2, 64));
    Tensor out = keep(Tensor.empty(cpu, DType.F16, 3, 4, 64));
    Tensor q2 = keep(Tensor.zeros(cpu, DType.F16, 4, 64));
    Tensor k32 = keep(Tensor.zeros(cpu, DType.F16, 10, 2, 32));
    Tensor lse = keep(Tensor.empty(cpu, DType.F32, 4, 3));
    AttentionMask causal = AttentionMask.causal();
    assertEquals("numQoHeads must be a multiple of numKvHeads = 3, got 4",
        invalid(() -> SinglePrefill.run(q, k, k, out, null, KvLayout.NHD, causal)));
    assertEquals("numQoHeads must be a multiple of numKvHeads = 10, got 4",
        invalid(() -> SinglePrefill.run(q, k, k, out, null, KvLayout.HND, causal)));
    assertEquals("q.dim() must be 3 ([qoLen, numQoHeads, headDim]), got 2",
        invalid(() -> SinglePrefill.run(q2, k2, k2, out, null, KvLayout.NHD, causal)));
    assertEquals("k.dim() must be 3 ([numKvHeads, kvLen, headDim]), got 2",
        invalid(() -> SinglePrefill.run(q, q2, q2, out, null, KvLayout.HND, causal)));
    assertEquals("v.shape must be [10, 2, 64], got [10, 3, 64]",
        invalid(() -> SinglePrefill.run(q, k2, k, out, null, KvLayout.NHD, causal)));
    assertEquals("out.shape must be [3, 4, 64], got [4, 64]",
        invalid(() -> SinglePrefill.run(q, k2, k2, q2, null, KvLayout.NHD, causal)));
    assertEquals("k.size(2) must be q's head dim 64, got 32",
        invalid(() -> SinglePrefill.run(q, k32, k32, out, null, KvLayout.NHD, causal)));
    assertEquals("lse.shape must be [3, 4], got [4, 3]",
        invalid(() -> SinglePrefill.run(q, k2, k2, out, lse, KvLayout.NHD, causal)));
    assertEquals("mask.length must be the sum over requests of qoLen x kvLen = 30, got 29", invalid(
        () -> SinglePrefill.run(q, k2, k2, out, null, KvLayout.NHD, AttentionMask.custom(new boolean[29]))));
    assertEquals("layout must be non-null, got null", invalid(() -> SinglePrefill.run(q, k2, k2, out, null, null,
        causal)));
    SinglePrefill.run(q, k2, k2, out, null, KvLayout.NHD, AttentionMask.custom(new boolean[30]));
  }

  @Test
  void masks() {
    assertEquals("mask must be non-null, got null", invalid(() -> AttentionMask.custom((boolean[]) null)));
    assertEquals("mask must be non-null, got null", invalid(() -> AttentionMask.packed(null)));
    assertEquals(AttentionMask.Kind.CAUSAL, AttentionMask.causal(true).kind());
    assertEquals(AttentionMask.Kind.NONE, AttentionMask.causal(false).kind());
    assertTrue(AttentionMask.custom(new boolean[1]).isCustom());
  }

  @Test
  void cudaRefusesHeadDimsWithoutAKernel() {
    if (Device.cudaDeviceCount() == 0) {
      assertThrows(NoCudaDeviceException.class, () -> Native.check(Fi4j.fi4j_prefill_supported(0, 1, 128, 8, 2)));
      return;
    }
    Device gpu = Device.cuda(0);
    try (BatchPrefillWithRaggedKvCache op = new BatchPrefillWithRaggedKvCache(gpu)) {
      // 72 has no kernel either way (run-time compiled head dims are multiples of 16; GpuJitPrefillTest covers them).
      String message =
          unsupported(() -> op.plan(new int[] {0, 1}, new int[] {0, 1}, 8, 2, 72, DType.BF16, AttentionMask.causal()));
      assertTrue(message.contains("head_dim 72"), message);
      op.plan(new int[] {0, 1}, new int[] {0, 1}, 8, 2, 128, DType.BF16, AttentionMask.causal());
    }
  }

  // ---- C API behind it ----

  /** A valid CPU ragged call: 2 requests, q [7, 4, 8], k/v [9, 2, 8]; each test breaks one field. */
  private Fi4j.fi4j_prefill_args raggedArgs() {
    Tensor q = keep(Tensor.zeros(cpu, DType.F16, 7, 4, 8));
    Tensor k = keep(Tensor.zeros(cpu, DType.F16, 9, 2, 8));
    Tensor o = keep(Tensor.empty(cpu, DType.F16, 7, 4, 8));
    IntPointer qo = keep(new IntPointer(new int[] {0, 3, 7}));
    IntPointer kv = keep(new IntPointer(new int[] {0, 4, 9}));
    Fi4j.fi4j_prefill_args a = keep(new Fi4j.fi4j_prefill_args());
    a.dtype(Fi4j.FI4J_F16).batch_size(2).num_qo_heads(4).num_kv_heads(2).head_dim(8)
        .qo_indptr(qo).nnz_qo(7).q(CORE.pointer(q)).q_stride_n(32).q_stride_h(8)
        .o(CORE.pointer(o)).o_stride_n(32).o_stride_h(8).lse(null)
        .kv_storage(Fi4j.FI4J_KV_RAGGED).k(CORE.pointer(k)).k_stride_n(16).k_stride_h(8)
        .v(CORE.pointer(k)).v_stride_n(16).v_stride_h(8).kv_indptr(kv).nnz_kv(9)
        .mask_mode(Fi4j.FI4J_MASK_CAUSAL).custom_mask(null).mask_indptr(null).custom_mask_bytes(0)
        .num_work(0).cta_tile_q(0).workspace(null).workspace_bytes(0);
    a.options().sm_scale(0).logits_soft_cap(0).window_left(-1).pos_encoding(0).rope_scale(1).rope_theta(1e4f);
    return a;
  }

  private String cInvalid(Consumer<Fi4j.fi4j_prefill_args> breakIt) {
    Fi4j.fi4j_prefill_args a = raggedArgs();
    Native.check(Fi4j.fi4j_batch_prefill(Native.CPU, a, null));  // valid as built
    breakIt.accept(a);
    return invalid(() -> Native.check(Fi4j.fi4j_batch_prefill(Native.CPU, a, null)));
  }

  private IntPointer ints(int... v) {
    return keep(new IntPointer(v));
  }

  @Test
  void cRaggedArguments() {
    assertEquals("args must be non-null, got null", invalid(
        () -> Native.check(Fi4j.fi4j_batch_prefill(Native.CPU, (Fi4j.fi4j_prefill_args) null, (Pointer) null))));
    assertEquals("qo_indptr[0] must be 0, got 1", cInvalid(a -> a.qo_indptr(ints(1, 3, 7))));
    assertEquals("qo_indptr[2] must be >= qo_indptr[1] (3), got 2", cInvalid(a -> a.qo_indptr(ints(0, 3, 2))));
    assertEquals("qo_indptr[2] must be <= nnz_qo (7), got 8", cInvalid(a -> a.qo_indptr(ints(0, 3, 8))));
    assertEquals("kv_indptr[2] must be <= nnz_kv (9), got 10", cInvalid(a -> a.kv_indptr(ints(0, 4, 10))));
    assertEquals("kv_indptr[1] must be >= kv_indptr[0] (0), got -1", cInvalid(a -> a.kv_indptr(ints(0, -1, 9))));
    assertEquals("batch_size must be 1 when qo_indptr is null (single request), got 2",
        cInvalid(a -> a.qo_indptr(null)));
    assertEquals("batch_size must be 1 when kv_indptr is null (single request), got 2",
        cInvalid(a -> a.kv_indptr(null)));
    assertEquals("batch_size must be >= 0, got -1", cInvalid(a -> a.batch_size(-1)));
    assertEquals("nnz_qo must be >= 0, got -1", cInvalid(a -> a.nnz_qo(-1)));
    assertEquals("nnz_kv must be >= 0, got -2", cInvalid(a -> a.nnz_kv(-2)));
    assertEquals("q must be non-null, got null", cInvalid(a -> a.q(null)));
    assertEquals("o must be non-null, got null", cInvalid(a -> a.o(null)));
    assertEquals("k must be non-null, got null", cInvalid(a -> a.k(null)));
    assertEquals("v must be non-null, got null", cInvalid(a -> a.v(null)));
    assertEquals("q_stride_n must be >= 0, got -32", cInvalid(a -> a.q_stride_n(-32)));
    assertEquals("o_stride_h must be >= 0, got -8", cInvalid(a -> a.o_stride_h(-8)));
    assertEquals("k_stride_n must be >= 0, got -16", cInvalid(a -> a.k_stride_n(-16)));
    assertEquals("v_stride_h must be >= 0, got -8", cInvalid(a -> a.v_stride_h(-8)));
    assertEquals("kv_storage must be RAGGED (0) or PAGED (1), got 5", cInvalid(a -> a.kv_storage(5)));
    assertEquals("mask_mode must be NONE (0), CAUSAL (1) or CUSTOM (2), got 3", cInvalid(a -> a.mask_mode(3)));
    assertEquals("num_kv_heads must be > 0, got 0", cInvalid(a -> a.num_kv_heads(0)));
    assertEquals("num_qo_heads must be a multiple of num_kv_heads (3), got 4", cInvalid(a -> a.num_kv_heads(3)));
    assertEquals("num_work must be >= 0, got -1", cInvalid(a -> a.num_work(-1)));
    assertEquals("cta_tile_q must be >= 0, got -1", cInvalid(a -> a.cta_tile_q(-1)));
    assertEquals("workspace_bytes must be >= 0, got -1", cInvalid(a -> a.workspace_bytes(-1)));
    assertEquals("options.sm_scale must be finite, got nan", cInvalid(a -> a.options().sm_scale(Float.NaN)));
    assertEquals("options.logits_soft_cap must be >= 0 and finite (0 = off), got -1",
        cInvalid(a -> a.options().logits_soft_cap(-1)));
    assertEquals("options.pos_encoding must be NONE (0) or ROPE_LLAMA (1), got 7",
        cInvalid(a -> a.options().pos_encoding(7)));
    assertEquals("options.rope_theta must be > 0, got 0",
        cInvalid(a -> a.options().pos_encoding(1).rope_theta(0)));
    assertEquals("options.rope_scale must be > 0, got -1",
        cInvalid(a -> a.options().pos_encoding(1).rope_scale(-1)));
    Fi4j.fi4j_prefill_args a = raggedArgs();
    assertEquals("dtype F32 is not supported for attention (supported: F16, BF16)",
        unsupported(() -> Native.check(Fi4j.fi4j_batch_prefill(Native.CPU, a.dtype(Fi4j.FI4J_F32), null))));
    assertEquals("head_dim 1026 is not supported by the CPU backend (even, 2..1024)", unsupported(
        () -> Native.check(Fi4j.fi4j_batch_prefill(Native.CPU, a.dtype(Fi4j.FI4J_F16).head_dim(1026), null))));
  }

  @Test
  void cCustomMask() {
    // request 0: 3 x 4 = 12 bits = 2 bytes; request 1: 4 x 5 = 20 bits = 3 bytes
    Tensor bits = keep(Tensor.zeros(cpu, DType.U8, 5));
    Consumer<Fi4j.fi4j_prefill_args> custom = a -> a.mask_mode(Fi4j.FI4J_MASK_CUSTOM).custom_mask(CORE.pointer(bits))
        .mask_indptr(ints(0, 2, 5)).custom_mask_bytes(5);
    Fi4j.fi4j_prefill_args ok = raggedArgs();
    custom.accept(ok);
    Native.check(Fi4j.fi4j_batch_prefill(Native.CPU, ok, null));
    assertEquals("mask_indptr[1] must be >= 2 (request 0's 3 x 4 mask takes 2 bytes from byte 0), got 1",
        cInvalid(custom.andThen(a -> a.mask_indptr(ints(0, 1, 5)))));
    assertEquals("mask_indptr[2] must be >= 5 (request 1's 4 x 5 mask takes 3 bytes from byte 2), got 4",
        cInvalid(custom.andThen(a -> a.mask_indptr(ints(0, 2, 4)))));
    assertEquals("mask_indptr[0] must be 0, got 1", cInvalid(custom.andThen(a -> a.mask_indptr(ints(1, 3, 6)))));
    assertEquals("mask_indptr[2] must be <= custom_mask_bytes (4), got 5",
        cInvalid(custom.andThen(a -> a.custom_mask_bytes(4))));
    assertEquals("custom_mask must be non-null, got null", cInvalid(custom.andThen(a -> a.custom_mask(null))));
    assertEquals("custom_mask_bytes must be >= 0, got -1", cInvalid(custom.andThen(a -> a.custom_mask_bytes(-1))));
    assertEquals("batch_size must be 1 when mask_indptr is null (single request), got 2",
        cInvalid(custom.andThen(a -> a.mask_indptr(null))));
    // a single request (all indptrs null) reads its mask from byte 0
    assertEquals("custom_mask_bytes must be >= 8 (request 0's 7 x 9 mask takes 8 bytes from byte 0), got 5",
        cInvalid(custom.andThen(a -> a.batch_size(1).qo_indptr(null).kv_indptr(null).mask_indptr(null))));
  }

  @Test
  void cPagedArguments() {
    PagedKvCache cache = keep(PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, 4, 4, 2, 8));
    Consumer<Fi4j.fi4j_prefill_args> paged = a -> {
      a.kv_storage(Fi4j.FI4J_KV_PAGED);
      cache.fill(a.paged_kv());
      // request 0: pages 3, 1 (4 + 1 tokens); request 1: pages 0, 2 (4 + 4 tokens)
      a.paged_kv().kv_indptr(ints(0, 2, 4)).kv_indices(ints(3, 1, 0, 2)).kv_last_page_len(ints(1, 4))
          .batch_size(2).num_indices(4);
    };
    Fi4j.fi4j_prefill_args ok = raggedArgs();
    paged.accept(ok);
    Native.check(Fi4j.fi4j_batch_prefill(Native.CPU, ok, null));
    assertEquals("paged_kv.kv_indices[2] must be in [0, 4), got 7",
        cInvalid(paged.andThen(a -> a.paged_kv().kv_indices(ints(3, 1, 7, 2)))));
    assertEquals("paged_kv.kv_last_page_len[0] must be in [0, 4], got 5",
        cInvalid(paged.andThen(a -> a.paged_kv().kv_last_page_len(ints(5, 4)))));
    assertEquals("paged_kv.kv_last_page_len[1] must be 0 for a request with no pages, got 4",
        cInvalid(paged.andThen(a -> a.paged_kv().kv_indptr(ints(0, 4, 4)))));
    assertEquals("paged_kv.kv_indptr[2] must be <= paged_kv.num_indices (3), got 4",
        cInvalid(paged.andThen(a -> a.paged_kv().num_indices(3))));
    assertEquals("paged_kv.kv_indptr must be non-null, got null",
        cInvalid(paged.andThen(a -> a.paged_kv().kv_indptr(null))));
    assertEquals("paged_kv.num_kv_heads must be num_kv_heads (2), got 1",
        cInvalid(paged.andThen(a -> a.paged_kv().num_kv_heads(1))));
    assertEquals("paged_kv.head_dim must be head_dim (8), got 16",
        cInvalid(paged.andThen(a -> a.paged_kv().head_dim(16))));
    assertEquals("paged_kv.batch_size must be batch_size (2), got 1",
        cInvalid(paged.andThen(a -> a.paged_kv().batch_size(1))));
    assertEquals("paged_kv.dtype must be the query dtype F16, got BF16",
        cInvalid(paged.andThen(a -> a.paged_kv().dtype(Fi4j.FI4J_BF16))));
    assertEquals("paged_kv.page_size must be >= 1, got 0", cInvalid(paged.andThen(a -> a.paged_kv().page_size(0))));
    assertEquals("paged_kv.page_stride must be >= 0, got -1",
        cInvalid(paged.andThen(a -> a.paged_kv().page_stride(-1))));
    assertEquals("paged_kv.k must be non-null, got null", cInvalid(paged.andThen(a -> a.paged_kv().k(null))));
  }

  @Test
  void cPlan() {
    Tensor ws = keep(Tensor.empty(cpu, DType.U8, 256));
    Fi4j.fi4j_prefill_plan p = keep(new Fi4j.fi4j_prefill_plan());
    Runnable valid = () -> p.batch_size(2).num_qo_heads(8).num_kv_heads(2).head_dim(64).page_size(0)
        .mask_mode(Fi4j.FI4J_MASK_CAUSAL).window_left(-1).qo_indptr_host(ints(0, 3, 7)).kv_len_host(ints(4, 5));
    valid.run();
    Native.check(Fi4j.fi4j_batch_prefill_plan(Native.CPU, p, CORE.pointer(ws), 256, null));
    assertEquals(0, p.num_work());
    assertEquals(0L, p.workspace_bytes());
    String[][] cases = {
      {"kv_len_host[1] must be >= 0, got -1", "kv"},
      {"qo_indptr_host[2] must be >= qo_indptr_host[1] (3), got 1", "qo"},
      {"page_size must be >= 0 (0 for ragged K/V), got -1", "page"},
      {"mask_mode must be NONE (0), CAUSAL (1) or CUSTOM (2), got 9", "mask"},
      {"num_qo_heads must be a multiple of num_kv_heads (3), got 8", "heads"},
      {"qo_indptr_host must be non-null, got null", "null"},
      {"workspace_bytes must be >= 0, got -1", "ws"},
    };
    for (String[] c : cases) {
      valid.run();
      long wsBytes = 256;
      switch (c[1]) {
        case "kv": p.kv_len_host(ints(4, -1)); break;
        case "qo": p.qo_indptr_host(ints(0, 3, 1)); break;
        case "page": p.page_size(-1); break;
        case "mask": p.mask_mode(9); break;
        case "heads": p.num_kv_heads(3); break;
        case "null": p.qo_indptr_host((IntPointer) null); break;
        default: wsBytes = -1;
      }
      long bytes = wsBytes;
      assertEquals(c[0], invalid(() -> Native.check(Fi4j.fi4j_batch_prefill_plan(Native.CPU, p, CORE.pointer(ws), bytes,
          null))));
    }
    assertEquals("plan must be non-null, got null",
        invalid(() -> Native.check(Fi4j.fi4j_batch_prefill_plan(Native.CPU, (Fi4j.fi4j_prefill_plan) null, (Pointer) null, 0, null))));
  }

  @Test
  void cPackbits() {
    byte[] out = new byte[2];
    assertEquals("n must be >= 0, got -1",
        invalid(() -> Native.check(Fi4j.fi4j_packbits(new byte[1], -1, out))));
    assertEquals("packed_capacity must be >= 3 (the packed segments), got 2", invalid(() -> Native.check(
        Fi4j.fi4j_segment_packbits(new byte[17], new int[] {0, 9, 17}, 2, new byte[2], 2, new int[3]))));
    assertEquals("indptr[0] must be 0, got 2", invalid(() -> Native.check(
        Fi4j.fi4j_segment_packbits(new byte[17], new int[] {2, 9, 17}, 2, new byte[3], 3, new int[3]))));
    assertEquals("indptr[2] must be >= indptr[1] (9), got 8", invalid(() -> Native.check(
        Fi4j.fi4j_segment_packbits(new byte[17], new int[] {0, 9, 8}, 2, new byte[3], 3, new int[3]))));
    assertEquals("batch_size must be >= 0, got -1", invalid(() -> Native.check(
        Fi4j.fi4j_segment_packbits(new byte[1], new int[] {0}, -1, new byte[1], 1, new int[1]))));
  }
}
