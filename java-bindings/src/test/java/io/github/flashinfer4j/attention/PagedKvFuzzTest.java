package io.github.flashinfer4j.attention;

import static io.github.flashinfer4j.testing.Fuzz.IAE;
import static io.github.flashinfer4j.testing.Fuzz.ISE;
import static io.github.flashinfer4j.testing.Fuzz.bytes;
import static io.github.flashinfer4j.testing.Fuzz.with;
import static io.github.flashinfer4j.testing.Fuzz.withL;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Fuzz;
import io.github.flashinfer4j.testing.Gpu;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fuzz cases of the paged KV cache for {@link Fuzz}: page tables, caches and {@link PagedKv#append}. Each
 * mutation must give the typed exception it names; the controls (appends with host and device targets, and on CUDA
 * device targets that are all invalid, which the kernel must skip) must succeed and write nothing outside the cache.
 */
class PagedKvFuzzTest {
  private final Fuzz.Table<AttentionFuzzEnv> table = new Fuzz.Table<>();

  private void add(String name, Class<? extends Throwable> type, String fragments, Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.add(name, type, fragments, maker);
  }


  private void addOther(String name, String fragments, Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.addOther(name, fragments, maker);
  }

  private void addCpu(String name, Class<? extends Throwable> type, String fragments,
      Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.addCpu(name, type, fragments, maker);
  }

  private void valid(String name, Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.valid(name, maker);
  }

  static List<Device> devices() {
    return Gpu.devices();
  }

  private void pageTables() {
    add("PageTable.of pageSize", IAE, "pageSize", e ->
        () -> PageTable.of(e.dev, e.nonPositive(), e.indptr, e.indices, e.last));
    add("PageTable.of null", IAE, "device|kvIndptr|kvIndices|kvLastPageLen", e -> {
      int w = e.rnd.nextInt(4);
      return () -> PageTable.of(w == 0 ? null : e.dev, e.page, w == 1 ? null : e.indptr, w == 2 ? null : e.indices,
          w == 3 ? null : e.last);
    });
    add("PageTable.of indptr length", IAE, "kvIndptr.length", e -> {
      int[] ip = Arrays.copyOf(e.indptr, e.indptr.length + (e.rnd.nextBoolean() ? 1 : -1));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of indptr[0]", IAE, "kvIndptr[0]", e -> {
      int[] ip = with(e.indptr, 0, e.rnd.nextBoolean() ? 1 + e.rnd.nextInt(5) : -1 - e.rnd.nextInt(5));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of non-monotone indptr", IAE, "kvIndptr[", e -> {
      int b = 1 + e.rnd.nextInt(e.batch);
      int[] ip = with(e.indptr, b, e.indptr[b - 1] - 1 - e.rnd.nextInt(3));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of indptr beyond indices", IAE, "kvIndptr[", e -> {
      int[] ip = with(e.indptr, e.batch, e.indices.length + 1 + e.rnd.nextInt(100));
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, e.last);
    });
    add("PageTable.of negative page id", IAE, "kvIndices[", e -> {
      int[] ix = with(e.indices, e.rnd.nextInt(e.indices.length), e.rnd.nextBoolean() ? -1 : Integer.MIN_VALUE);
      return () -> PageTable.of(e.dev, e.page, e.indptr, ix, e.last);
    });
    add("PageTable.of last page len", IAE, "kvLastPageLen[0]", e -> {
      int[] l = with(e.last, 0, e.outside(0, e.page + 1));
      return () -> PageTable.of(e.dev, e.page, e.indptr, e.indices, l);
    });
    add("PageTable.of last page len of an empty request", IAE, "kvLastPageLen[", e -> {
      int[] ip = Arrays.copyOf(e.indptr, e.indptr.length + 1);
      ip[ip.length - 1] = ip[ip.length - 2];
      int[] l = Arrays.copyOf(e.last, e.last.length + 1);
      l[l.length - 1] = e.rnd.nextBoolean() ? 1 : -1;
      return () -> PageTable.of(e.dev, e.page, ip, e.indices, l);
    });
    add("PageTable.of kvLen overflow", IAE, "kvLen(0)", e -> {
      int pageSize = (1 << 30) + e.rnd.nextInt(1000);
      return () -> PageTable.of(e.dev, pageSize, new int[] {0, 3}, new int[] {0, 1, 2}, new int[] {1});
    });
    add("PageTable.fromTensors dtype", IAE, "kvIndptr.dtype", e -> {
      Tensor ip = e.own(Tensor.fromFloats(e.dev, DType.F32, new float[e.indptr.length], e.indptr.length));
      return () -> PageTable.fromTensors(e.dev, e.page, ip, e.ints(e.indices), e.ints(e.last));
    });
    add("PageTable.fromTensors dim", IAE, "kvIndices.dim()", e -> {
      Tensor ix = e.own(Tensor.zeros(e.dev, DType.I32, 1, Math.max(1, e.indices.length)));
      return () -> PageTable.fromTensors(e.dev, e.page, e.ints(e.indptr), ix, e.ints(e.last));
    });
    add("PageTable.fromTensors closed", ISE, "closed", e -> {
      Tensor l = e.ints(e.last);
      l.close();
      return () -> PageTable.fromTensors(e.dev, e.page, e.ints(e.indptr), e.ints(e.indices), l);
    });
    add("PageTable.fromTensors null", IAE, "kvIndptr|kvIndices|kvLastPageLen|device", e -> {
      int w = e.rnd.nextInt(4);
      return () -> PageTable.fromTensors(w == 3 ? null : e.dev, e.page, w == 0 ? null : e.ints(e.indptr),
          w == 1 ? null : e.ints(e.indices), w == 2 ? null : e.ints(e.last));
    });
    add("PageTable.fromTensors contents", IAE, "kvIndptr[", e -> {
      int b = 1 + e.rnd.nextInt(e.batch);
      int[] ip = with(e.indptr, b, e.indptr[b - 1] - 1);
      return () -> PageTable.fromTensors(e.dev, e.page, e.ints(ip), e.ints(e.indices), e.ints(e.last));
    });
    add("PageTable.contiguous negative", IAE, "kvLens[", e -> {
      int[] l = with(e.lens, e.rnd.nextInt(e.batch), -1 - e.rnd.nextInt(100));
      return () -> PageTable.contiguous(e.dev, e.page, l);
    });
    add("PageTable.contiguous huge", IAE, "kvLens", e -> {
      int[] l = new int[2 + e.rnd.nextInt(3)];
      Arrays.fill(l, Integer.MAX_VALUE - e.rnd.nextInt(10));
      return () -> PageTable.contiguous(e.dev, 1, l);
    });
    add("PageTable.contiguous null/pageSize", IAE, "kvLens|pageSize", e -> e.rnd.nextBoolean()
        ? () -> PageTable.contiguous(e.dev, e.page, null) : () -> PageTable.contiguous(e.dev, e.nonPositive(), e.lens));
    add("PageTable.kvLen bad request", IAE, "b must be", e -> {
      PageTable t = e.table();
      return () -> t.kvLen(e.outside(0, e.batch));
    });
  }

  private void caches() {
    add("PagedKvCache.allocate bad size", IAE, "numPages|pageSize|numKvHeads|headDim", e -> {
      int[] a = {e.numPages, e.page, e.hkv, e.dim};
      int i = e.rnd.nextInt(4);
      a[i] = i == 0 ? -1 - e.rnd.nextInt(10) : e.nonPositive();
      boolean comb = e.rnd.nextBoolean();
      return () -> {
        if (comb) {
          PagedKvCache.allocateCombined(e.dev, e.dtype, e.layout, a[0], a[1], a[2], a[3]);
        } else {
          PagedKvCache.allocate(e.dev, e.dtype, e.layout, a[0], a[1], a[2], a[3]);
        }
      };
    });
    add("PagedKvCache.allocate dtype", IAE, "dtype", e -> {
      DType[] bad = {DType.F32, DType.I32, DType.U8, DType.FP8_E4M3, null};
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> PagedKvCache.allocate(e.dev, dt, e.layout, 2, 4, 1, 8);
    });
    add("PagedKvCache.allocate null", IAE, "device|layout", e -> e.rnd.nextBoolean()
        ? () -> PagedKvCache.allocate(null, e.dtype, e.layout, 2, 4, 1, 8)
        : () -> PagedKvCache.allocate(e.dev, e.dtype, null, 2, 4, 1, 8));
    add("PagedKvCache.allocate huge", IAE, "shape", e -> () -> PagedKvCache.allocate(e.dev, e.dtype, e.layout,
        Integer.MAX_VALUE - e.rnd.nextInt(5), Integer.MAX_VALUE, 1 + e.rnd.nextInt(Integer.MAX_VALUE), 1 << 20));
    add("PagedKvCache.of dim", IAE, "k.dim()", e -> {
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, 2, 4, e.dim));
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of v shape", IAE, "v.shape", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      int i = e.rnd.nextInt(4);
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, withL(s, i, s[i] + 1)));
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of v dtype", IAE, "v.dtype", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      Tensor v = e.own(Tensor.zeros(e.dev, e.otherDtype, s));
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of v strides", IAE, "v.strides", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, s[0], s[1] + 1, s[2], s[3])).narrow(1, 0, s[1]);
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of last dim strided", IAE, "k.stride(3)", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor wide = e.own(Tensor.zeros(e.dev, e.dtype, s[0], s[1], s[2], s[3], 2));
      Tensor k = wide.select(4, 0);
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of dtype", IAE, "k.dtype", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.rnd.nextBoolean() ? DType.F32 : DType.U8, s));
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of zero-size page dims", IAE, "page size|head dim|KV heads", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      s[1 + e.rnd.nextInt(3)] = 0;
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of huge dims", IAE, "k.size(", e -> {
      Tensor t = e.small(e.dtype);
      long[] s = {1, 1L << 31 + e.rnd.nextInt(3), 1, 1};
      Tensor k = Tensor.wrap(e.dev, t.address(), e.dtype, s, new long[] {0, 0, 0, 1});
      return () -> PagedKvCache.of(k, k, e.layout);
    });
    add("PagedKvCache.of closed", ISE, "closed", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, s));
      (e.rnd.nextBoolean() ? k : v).close();
      return () -> PagedKvCache.of(k, v, e.layout);
    });
    add("PagedKvCache.of null", IAE, "k|v|layout", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      int w = e.rnd.nextInt(3);
      return () -> PagedKvCache.of(w == 0 ? null : k, w == 1 ? null : k, w == 2 ? null : e.layout);
    });
    add("PagedKvCache.ofCombined dim", IAE, "kv.dim()", e -> {
      Tensor kv = e.own(Tensor.zeros(e.dev, e.dtype, e.pageShape(2, e.page, e.hkv, e.dim)));
      return () -> PagedKvCache.ofCombined(kv, e.layout);
    });
    add("PagedKvCache.ofCombined size(1)", IAE, "kv.size(1)", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor kv = e.own(Tensor.zeros(e.dev, e.dtype, s[0], e.rnd.nextBoolean() ? 1 : 3, s[1], s[2], s[3]));
      return () -> PagedKvCache.ofCombined(kv, e.layout);
    });
    add("PagedKvCache.ofCombined null layout", IAE, "layout", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor kv = e.own(Tensor.zeros(e.dev, e.dtype, s[0], 2, s[1], s[2], s[3]));
      return () -> PagedKvCache.ofCombined(kv, null);
    });
    addOther("PagedKvCache.of v on another device", "v.device", e -> {
      long[] s = e.pageShape(2, e.page, e.hkv, e.dim);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, s));
      return () -> PagedKvCache.of(k, e.onOther(k), e.layout);
    });
  }

  private void appends() {
    add("append batch index out of range", IAE, "batchIndices[", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz);
      t[0][e.rnd.nextInt(nnz)] = e.outside(0, e.batch);
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table());
    });
    add("append position outside the request's pages", IAE, "positions[", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz);
      int n = e.rnd.nextInt(nnz);
      t[1][n] = e.outside(0, e.lens[t[0][n]]);
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table(), null);
    });
    add("append targets length", IAE, "batchIndices.length|positions.length", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz + 1);
      Tensor k = e.tokens(nnz);
      boolean which = e.rnd.nextBoolean();
      int[] bi = which ? t[0] : Arrays.copyOf(t[0], nnz);
      int[] pos = which ? Arrays.copyOf(t[1], nnz) : t[1];
      return () -> PagedKv.append(k, k, bi, pos, e.cache(), e.table());
    });
    add("append keys heads", IAE, "keys.shape|values.shape", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, nnz, e.hkv + 1, e.dim));
      boolean keysBad = e.rnd.nextBoolean();
      return () -> PagedKv.append(keysBad ? bad : k, keysBad ? k : bad, t[0], t[1], e.cache(), e.table());
    });
    add("append keys head dim", IAE, "keys.shape", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, nnz, e.hkv, e.dim * 2));
      return () -> PagedKv.append(bad, bad, t[0], t[1], e.cache(), e.table());
    });
    add("append keys rank", IAE, "keys.dim()", e -> {
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, 2, e.hkv * e.dim));
      return () -> PagedKv.append(bad, bad, new int[2], new int[2], e.cache(), e.table());
    });
    add("append values dtype", IAE, "values.dtype|keys.dtype", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor v = e.own(Tensor.zeros(e.dev, e.otherDtype, nnz, e.hkv, e.dim));
      boolean swap = e.rnd.nextBoolean();
      return () -> PagedKv.append(swap ? v : k, swap ? k : v, t[0], t[1], e.cache(), e.table());
    });
    add("append keys last dim strided", IAE, "keys.stride(2)", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.own(Tensor.zeros(e.dev, e.dtype, nnz, e.hkv, e.dim, 2)).select(3, 0);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table());
    });
    add("append page id beyond the cache", IAE, "kvIndices[", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      int[] ix = with(e.indices, e.rnd.nextInt(e.indices.length), e.numPages + e.rnd.nextInt(1 << 20));
      PageTable bad = e.own(PageTable.of(e.dev, e.page, e.indptr, ix, e.last));
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), bad);
    });
    add("append page size mismatch", IAE, "cache.pageSize", e -> {
      PageTable bad = e.own(PageTable.contiguous(e.dev, e.page + 1, new int[] {1}));
      Tensor k = e.tokens(1);
      return () -> PagedKv.append(k, k, new int[] {0}, new int[] {0}, e.cache(), bad);
    });
    add("append closed input", ISE, "closed", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor v = e.tokens(nnz);
      PagedKvCache c = e.cache();
      PageTable tab = e.table();
      Stream s = e.own(Stream.create(e.dev));
      AutoCloseable[] victims = {k, v, c, tab, s};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> PagedKv.append(k, v, t[0], t[1], c, tab, s);
    });
    add("append null", IAE, "keys|values|cache|pageTable|batchIndices|positions", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      int w = e.rnd.nextInt(6);
      return () -> PagedKv.append(w == 0 ? null : k, w == 1 ? null : k, w == 2 ? null : t[0], w == 3 ? null : t[1],
          w == 4 ? null : e.cache(), w == 5 ? null : e.table());
    });
    add("append(AppendPositions) null/bad", IAE, "targets|positions[", e -> {
      Tensor k = e.tokens(1);
      AppendPositions bad = new AppendPositions(new int[] {0}, new int[] {e.lens[0] + e.rnd.nextInt(5)});
      boolean isNull = e.rnd.nextBoolean();
      return () -> PagedKv.append(k, k, isNull ? null : bad, e.cache(), e.table(), null);
    });
    add("append(Tensor targets) dtype", IAE, "batchIndices.dtype|positions.dtype", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor f = e.own(Tensor.zeros(e.dev, DType.F32, nnz));
      boolean first = e.rnd.nextBoolean();
      return () -> PagedKv.append(k, k, first ? f : e.ints(t[0]), first ? e.ints(t[1]) : f, e.cache(), e.table(),
          null);
    });
    add("append(Tensor targets) shape", IAE, "batchIndices.shape|positions.shape", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor bad = e.ints(new int[nnz + 1]);
      boolean first = e.rnd.nextBoolean();
      return () -> PagedKv.append(k, k, first ? bad : e.ints(t[0]), first ? e.ints(t[1]) : bad, e.cache(),
          e.table(), null);
    });
    add("append(Tensor targets) non-contiguous", IAE, "positions", e -> {
      int nnz = 2 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor two = e.own(Tensor.zeros(e.dev, DType.I32, nnz, 2));
      return () -> PagedKv.append(k, k, e.ints(t[0]), two.select(1, 0), e.cache(), e.table(), null);
    });
    add("append(Tensor targets) closed", ISE, "closed", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor bi = e.ints(t[0]);
      bi.close();
      return () -> PagedKv.append(k, k, bi, e.ints(t[1]), e.cache(), e.table(), null);
    });
    addCpu("append(Tensor targets) contents (checked in C on the CPU)", IAE, "positions[|batch_indices[", e -> {
      int nnz = 1 + e.rnd.nextInt(3);
      int[][] t = e.targets(nnz);
      int n = e.rnd.nextInt(nnz);
      t[1][n] = e.outside(0, e.lens[t[0][n]]);
      Tensor k = e.tokens(nnz);
      return () -> PagedKv.append(k, k, e.ints(t[0]), e.ints(t[1]), e.cache(), e.table(), null);
    });
    add("batchIndicesAndPositions malformed", IAE, "appendIndptr|seqLens", e -> {
      int[] counts = new int[e.batch];
      int[] ip = new int[e.batch + 1];
      for (int b = 0; b < e.batch; b++) {
        counts[b] = e.rnd.nextInt(3);
        ip[b + 1] = ip[b] + counts[b];
      }
      int[] seq = new int[e.batch];
      for (int b = 0; b < e.batch; b++) {
        seq[b] = counts[b] + e.rnd.nextInt(5);
      }
      switch (e.rnd.nextInt(6)) {
        case 0:
          return () -> PagedKv.batchIndicesAndPositions(null, seq);
        case 1:
          return () -> PagedKv.batchIndicesAndPositions(ip, null);
        case 2:
          return () -> PagedKv.batchIndicesAndPositions(Arrays.copyOf(ip, ip.length + 1), seq);
        case 3:
          return () -> PagedKv.batchIndicesAndPositions(with(ip, 0, 1 + e.rnd.nextInt(4)), seq);
        case 4: {
          int b = e.rnd.nextInt(e.batch);
          return () -> PagedKv.batchIndicesAndPositions(with(ip, b + 1, ip[b] - 1 - e.rnd.nextInt(5)), seq);
        }
        default: {
          int b = e.rnd.nextInt(e.batch);
          int[] bad = with(seq, b, counts[b] - 1 - e.rnd.nextInt(5));
          return () -> PagedKv.batchIndicesAndPositions(ip, bad);
        }
      }
    });
    add("batchIndicesAndPositions huge", IAE, "appendIndptr[1]", e ->
        () -> PagedKv.batchIndicesAndPositions(new int[] {0, Integer.MAX_VALUE - e.rnd.nextInt(4)},
            new int[] {Integer.MAX_VALUE}));
    addOther("append keys on another device", "keys.device|values.device", e -> {
      int[][] t = e.targets(1);
      Tensor k = e.tokens(1);
      return () -> PagedKv.append(e.onOther(k), e.onOther(k), t[0], t[1], e.cache(), e.table());
    });
    addOther("append stream of another device", "stream.device", e -> {
      int[][] t = e.targets(1);
      Tensor k = e.tokens(1);
      Stream s = e.own(Stream.create(e.other));
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), e.table(), s);
    });
    addOther("append page table of another device", "cache.device", e -> {
      int[][] t = e.targets(1);
      Tensor k = e.tokens(1);
      PageTable other = e.own(PageTable.of(e.other, e.page, e.indptr, e.indices, e.last));
      return () -> PagedKv.append(k, k, t[0], t[1], e.cache(), other);
    });
  }

  /** Unmutated calls: they must succeed, and write nothing outside their buffers. */
  private void controls() {
    valid("valid: append (host targets)", e -> {
      int nnz = e.rnd.nextInt(5);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Tensor v = e.tokens(nnz);
      return () -> PagedKv.append(k, v, t[0], t[1], e.cache(), e.table(), null);
    });
    valid("valid: append (device targets)", e -> {
      int nnz = 1 + e.rnd.nextInt(4);
      int[][] t = e.targets(nnz);
      Tensor k = e.tokens(nnz);
      Stream s = e.own(Stream.create(e.dev));
      return () -> {
        PagedKv.append(k, k, e.ints(t[0]), e.ints(t[1]), e.cache(), e.table(), s);
        s.synchronize();
      };
    });
    String guardCase = "bad device targets write nothing (CUDA kernel guard)";
    table.add(new Fuzz.Mutation<>(guardCase, List.of(), new String[0], e -> {
      if (e.dev.isCpu()) {
        return () -> { };
      }
      int nnz = 1 + e.rnd.nextInt(4);
      int[] bi = new int[nnz];
      int[] pos = new int[nnz];
      for (int n = 0; n < nnz; n++) {
        bi[n] = e.rnd.nextBoolean() ? e.outside(0, e.batch) : 0;
        pos[n] = bi[n] == 0 ? e.outside(0, e.lens[0]) : 0;
      }
      Tensor k = e.tokens(nnz);
      PagedKvCache c = e.cache();
      Tensor watched = e.watched.get(e.watched.size() - 1);
      byte[] before = bytes(watched);
      return () -> {
        PagedKv.append(k, k, e.ints(bi), e.ints(pos), c, e.table(), null);
        e.dev.synchronize();
        assertArrayEquals(before, bytes(watched), "a kernel given only invalid targets wrote into the cache");
      };
    }, false, false));
  }

  @ParameterizedTest
  @MethodSource("devices")
  void malformedArgumentsGiveTypedExceptions(Device device) {
    pageTables();
    caches();
    appends();
    controls();
    Fuzz.run("pagedkv", device, table, AttentionFuzzEnv::new);
  }
}
