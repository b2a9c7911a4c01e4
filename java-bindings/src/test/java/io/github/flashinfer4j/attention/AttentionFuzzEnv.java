package io.github.flashinfer4j.attention;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Fuzz;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The random valid attention problem a fuzz case of the attention family starts from ({@link DecodeFuzzTest},
 * {@link PrefillFuzzTest}, {@link PagedKvFuzzTest}): shapes, a page table, a cache, queries, append targets; for
 * prefill also query lengths, ragged K/V and a mask, drawn on first use so that decode cases keep their draws. The
 * CPU copies ({@link #cpuCache}, {@link #cpuTable}) serve the controls' reference runs on the CPU backend.
 */
final class AttentionFuzzEnv extends Fuzz.Env {
  final KvLayout layout;
  final boolean combined;
  final int page;
  final int hkv;
  final int hqo;
  final int dim;
  final int batch;
  final int[] lens;
  final int[] indptr;
  final int[] indices;
  final int[] last;
  final int numPages;

  private PagedKvCache cache;
  private Tensor cacheStorage;  // the guarded tensor behind the cache: [2, pages, ...] or [pages, 2, ...]
  private PageTable table;
  private Tensor q;
  private Tensor out;
  private Tensor lse;
  private BatchDecodeWithPagedKvCache decoder;

  AttentionFuzzEnv(Device dev, Device other, Random rnd) {
    super(dev, other, rnd);
    layout = rnd.nextBoolean() ? KvLayout.NHD : KvLayout.HND;
    combined = rnd.nextInt(3) == 0;
    page = 1 + rnd.nextInt(5);
    hkv = 1 + rnd.nextInt(dev.isCpu() ? 3 : 2);
    hqo = hkv * (1 + rnd.nextInt(3));
    dim = dev.isCpu() ? 2 << rnd.nextInt(4) : 64;
    batch = 1 + rnd.nextInt(4);
    lens = new int[batch];
    indptr = new int[batch + 1];
    last = new int[batch];
    for (int b = 0; b < batch; b++) {
      lens[b] = b == 0 ? 1 + rnd.nextInt(12) : rnd.nextInt(13);
      int p = (lens[b] + page - 1) / page;
      indptr[b + 1] = indptr[b] + p;
      last[b] = p == 0 ? 0 : lens[b] - (p - 1) * page;
    }
    numPages = indptr[batch] + rnd.nextInt(3);
    List<Integer> ids = new ArrayList<>();
    for (int i = 0; i < numPages; i++) {
      ids.add(i);
    }
    Collections.shuffle(ids, rnd);
    indices = new int[indptr[batch]];
    for (int i = 0; i < indices.length; i++) {
      indices[i] = ids.get(i);
    }
  }

  long[] pageShape(int pages, int pageSize, int heads, int headDim) {
    return PagedKvCache.shape(layout, pages, pageSize, heads, headDim);
  }

  PagedKvCache cache() {
    if (cache == null) {
      long[] s = pageShape(numPages, page, hkv, dim);
      if (combined) {
        Tensor kv = guardedTensor(dtype, s[0], 2, s[1], s[2], s[3]);
        cache = own(PagedKvCache.ofCombined(kv, layout));
        watched.add(kv);
        cacheStorage = kv;
      } else {
        Tensor kv = guardedTensor(dtype, 2, s[0], s[1], s[2], s[3]);
        cache = own(PagedKvCache.of(kv.select(0, 0), kv.select(0, 1), layout));
        watched.add(kv);
        cacheStorage = kv;
      }
    }
    return cache;
  }

  PageTable table() {
    if (table == null) {
      table = own(PageTable.of(dev, page, indptr, indices, last));
    }
    return table;
  }

  Tensor q() {
    if (q == null) {
      q = own(Tensor.fromFloats(dev, dtype, randoms((long) batch * hqo * dim), batch, hqo, dim));
    }
    return q;
  }

  Tensor out() {
    if (out == null) {
      out = guardedTensor(dtype, batch, hqo, dim);
      watched.add(out);
    }
    return out;
  }

  Tensor lse() {
    if (lse == null) {
      lse = guardedTensor(DType.F32, batch, hqo);
      watched.add(lse);
    }
    return lse;
  }

  BatchDecodeWithPagedKvCache planned() {
    BatchDecodeWithPagedKvCache d = decoder();
    d.plan(table(), hqo, hkv, dim, page, dtype);
    return d;
  }

  BatchDecodeWithPagedKvCache decoder() {
    if (decoder == null) {
      decoder = own(new BatchDecodeWithPagedKvCache(dev));
    }
    return decoder;
  }

  // ---- prefill: query lengths, ragged K/V, wrappers (drawn on first use, so decode cases keep their draws) ----

  private int[] qoLens;
  private int[] qoIndptr;
  private int[] kvIndptr;
  private Tensor prefillQ;
  private Tensor prefillOut;
  private Tensor prefillLse;
  private Tensor[] raggedKv;
  private BatchPrefillWithRaggedKvCache ragged;
  private BatchPrefillWithPagedKvCache pagedPrefill;

  /** Query rows of each request for prefill (request 0 has at least one; others may have none). */
  int[] qoLens() {
    if (qoLens == null) {
      qoLens = new int[batch];
      qoIndptr = new int[batch + 1];
      for (int b = 0; b < batch; b++) {
        qoLens[b] = b == 0 ? 1 + rnd.nextInt(6) : rnd.nextInt(7);
        qoIndptr[b + 1] = qoIndptr[b] + qoLens[b];
      }
    }
    return qoLens;
  }

  int[] qoIndptr() {
    qoLens();
    return qoIndptr;
  }

  int nnzQo() {
    return qoIndptr()[batch];
  }

  /** Ragged K/V offsets: request b has lens[b] keys. */
  int[] kvIndptr() {
    if (kvIndptr == null) {
      kvIndptr = new int[batch + 1];
      for (int b = 0; b < batch; b++) {
        kvIndptr[b + 1] = kvIndptr[b] + lens[b];
      }
    }
    return kvIndptr;
  }

  int nnzKv() {
    return kvIndptr()[batch];
  }

  /** Element offsets of each request's qoLen x kvLen block in an unpacked custom mask. */
  int[] maskIndptr() {
    int[] ip = new int[batch + 1];
    for (int b = 0; b < batch; b++) {
      ip[b + 1] = ip[b] + qoLens()[b] * lens[b];
    }
    return ip;
  }

  boolean[] bits(int n) {
    boolean[] m = new boolean[n];
    for (int i = 0; i < n; i++) {
      m[i] = rnd.nextInt(10) < 6;
    }
    return m;
  }

  /** A valid mask for the prefill batch: none, causal, custom (unpacked) or packed. */
  AttentionMask prefillMask() {
    switch (rnd.nextInt(4)) {
      case 0:
        return AttentionMask.none();
      case 1:
        return AttentionMask.causal();
      case 2:
        return AttentionMask.custom(bits(maskIndptr()[batch]));
      default: {
        int[] ip = maskIndptr();
        return AttentionMask.packed(Masks.segmentPackbits(bits(ip[batch]), ip));
      }
    }
  }

  Tensor prefillQ() {
    if (prefillQ == null) {
      prefillQ = own(Tensor.fromFloats(dev, dtype, randoms((long) nnzQo() * hqo * dim), nnzQo(), hqo, dim));
    }
    return prefillQ;
  }

  Tensor prefillOut() {
    if (prefillOut == null) {
      prefillOut = guardedTensor(dtype, nnzQo(), hqo, dim);
      watched.add(prefillOut);
    }
    return prefillOut;
  }

  Tensor prefillLse() {
    if (prefillLse == null) {
      prefillLse = guardedTensor(DType.F32, nnzQo(), hqo);
      watched.add(prefillLse);
    }
    return prefillLse;
  }

  long[] raggedShape(long tokens, long heads, long headDim) {
    return layout == KvLayout.NHD ? new long[] {tokens, heads, headDim} : new long[] {heads, tokens, headDim};
  }

  /** Ragged keys and values {k, v}: two halves of one guarded allocation. */
  Tensor[] raggedKv() {
    if (raggedKv == null) {
      long[] s = raggedShape(nnzKv(), hkv, dim);
      Tensor kv = guardedTensor(dtype, 2, s[0], s[1], s[2]);
      watched.add(kv);
      raggedKv = new Tensor[] {kv.select(0, 0), kv.select(0, 1)};
    }
    return raggedKv;
  }

  BatchPrefillWithRaggedKvCache ragged() {
    if (ragged == null) {
      ragged = own(new BatchPrefillWithRaggedKvCache(dev, layout, null));
    }
    return ragged;
  }

  BatchPrefillWithRaggedKvCache plannedRagged() {
    BatchPrefillWithRaggedKvCache r = ragged();
    r.plan(qoIndptr(), kvIndptr(), hqo, hkv, dim, dtype, prefillMask());
    return r;
  }

  BatchPrefillWithPagedKvCache pagedPrefill() {
    if (pagedPrefill == null) {
      pagedPrefill = own(new BatchPrefillWithPagedKvCache(dev));
    }
    return pagedPrefill;
  }

  BatchPrefillWithPagedKvCache plannedPaged() {
    BatchPrefillWithPagedKvCache p = pagedPrefill();
    p.plan(qoIndptr(), table(), hqo, hkv, dim, dtype, prefillMask());
    return p;
  }

  /** Random valid append targets: {batchIndices, positions}. */
  int[][] targets(int nnz) {
    int[] bi = new int[nnz];
    int[] pos = new int[nnz];
    for (int n = 0; n < nnz; n++) {
      int b;
      do {
        b = rnd.nextInt(batch);
      } while (lens[b] == 0);
      bi[n] = b;
      pos[n] = rnd.nextInt(lens[b]);
    }
    return new int[][] {bi, pos};
  }

  Tensor tokens(int nnz) {
    return own(Tensor.fromFloats(dev, dtype, randoms((long) nnz * hkv * dim), nnz, hkv, dim));
  }

  // ---- the CPU backend's copies, for the controls' reference runs ----

  /** The cache's contents on the CPU backend, in the same layout (combined or not). */
  PagedKvCache cpuCache() {
    cache();
    Tensor kv = onCpu(cacheStorage);
    return own(combined ? PagedKvCache.ofCombined(kv, layout)
        : PagedKvCache.of(kv.select(0, 0), kv.select(0, 1), layout));
  }

  /** The page table on the CPU backend. */
  PageTable cpuTable() {
    return own(PageTable.of(Device.cpu(), page, indptr, indices, last));
  }
}
