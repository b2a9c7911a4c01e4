package io.github.flashinfer4j.attention;

import static io.github.flashinfer4j.testing.Fuzz.IAE;
import static io.github.flashinfer4j.testing.Fuzz.ISE;
import static io.github.flashinfer4j.testing.Fuzz.UCE;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import io.github.flashinfer4j.testing.Fuzz;
import io.github.flashinfer4j.testing.Gpu;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fuzz cases of decode for {@link Fuzz}: {@link SingleDecode}, {@link BatchDecodeWithPagedKvCache} plan and run,
 * and the {@link AttentionOptions} every attention op takes. Each mutation must give the typed exception it names;
 * the controls (batch decode plan+run, single decode) run on poisoned outputs, which must come back fully written,
 * without NaN, and on CUDA within the dtype's tolerance of the CPU backend.
 */
class DecodeFuzzTest {
  private final Fuzz.Table<AttentionFuzzEnv> table = new Fuzz.Table<>();

  private void add(String name, Class<? extends Throwable> type, String fragments, Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.add(name, type, fragments, maker);
  }

  private void add2(String name, Class<? extends Throwable> a, Class<? extends Throwable> b, String fragments,
      Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.add2(name, a, b, fragments, maker);
  }

  private void addOther(String name, String fragments, Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.addOther(name, fragments, maker);
  }


  private void valid(String name, Fuzz.Maker<AttentionFuzzEnv> maker) {
    table.valid(name, maker);
  }

  static List<Device> devices() {
    return Gpu.devices();
  }

  /** Single-decode operands: q [Hqo, D], k/v [L, Hkv, D] or [Hkv, L, D], out, lse. */
  private static Tensor[] single(AttentionFuzzEnv e, DType dt, int hqo, int hkv, int dim, int kvLen) {
    long[] kvShape = e.layout == KvLayout.NHD ? new long[] {kvLen, hkv, dim} : new long[] {hkv, kvLen, dim};
    Tensor q = e.own(Tensor.zeros(e.dev, dt, hqo, dim));
    Tensor k = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor v = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor out = e.own(Tensor.zeros(e.dev, dt, hqo, dim));
    Tensor lse = e.own(Tensor.zeros(e.dev, DType.F32, hqo));
    return new Tensor[] {q, k, v, out, lse};
  }

  private static Tensor[] single(AttentionFuzzEnv e) {
    return single(e, e.dtype, e.hqo, e.hkv, e.dim, e.rnd.nextInt(9));
  }

  private void singleDecode() {
    add("SingleDecode q rank", IAE, "q.dim()", e -> {
      Tensor[] s = single(e);
      Tensor q3 = s[0].reshape(1, e.hqo, e.dim);
      return () -> SingleDecode.run(q3, s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode k rank", IAE, "k.dim()", e -> {
      Tensor[] s = single(e);
      Tensor k2 = s[1].reshape(s[1].numel());
      return () -> SingleDecode.run(s[0], k2, k2, s[3], s[4], e.layout);
    });
    add("SingleDecode v shape", IAE, "v.shape", e -> {
      Tensor[] s = single(e);
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, s[1].size(0) + 1, s[1].size(1), s[1].size(2)));
      return () -> SingleDecode.run(s[0], s[1], v, s[3], s[4], e.layout);
    });
    add("SingleDecode v strides", IAE, "v.strides", e -> {
      Tensor[] s = single(e, e.dtype, e.hqo, e.hkv, e.dim, 1 + e.rnd.nextInt(8));
      long[] sh = s[1].shape();
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, sh[0], sh[1] + 1, sh[2])).narrow(1, 0, sh[1]);
      return () -> SingleDecode.run(s[0], s[1], v, s[3], s[4], e.layout);
    });
    add("SingleDecode out shape", IAE, "out.shape", e -> {
      Tensor[] s = single(e);
      Tensor out = e.own(Tensor.zeros(e.dev, e.dtype, e.hqo + 1, e.dim));
      return () -> SingleDecode.run(s[0], s[1], s[2], out, s[4], e.layout);
    });
    add("SingleDecode mixed dtypes", IAE, "k.dtype|v.dtype|out.dtype", e -> {
      Tensor[] s = single(e);
      int i = 1 + e.rnd.nextInt(3);
      Tensor[] o = single(e, e.otherDtype, e.hqo, e.hkv, e.dim, (int) s[1].size(e.layout == KvLayout.NHD ? 0 : 1));
      Tensor[] m = s.clone();
      m[i] = o[i];
      if (i == 1) {
        m[2] = o[2];
      } else if (i == 2) {
        m[1] = o[1];
      }
      return () -> SingleDecode.run(m[0], m[1], m[2], m[3], m[4], e.layout);
    });
    add("SingleDecode head counts", IAE, "numQoHeads", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      Tensor[] s = single(e, e.dtype, hkv * (1 + e.rnd.nextInt(2)) + 1, hkv, e.dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode head dim mismatch", IAE, "k.size(2)", e -> {
      Tensor[] s = single(e);
      Tensor[] o = single(e, e.dtype, e.hqo, e.hkv, e.dim * 2, 3);
      return () -> SingleDecode.run(s[0], o[1], o[2], s[3], s[4], e.layout);
    });
    add("SingleDecode no KV heads", IAE, "numKvHeads", e -> {
      Tensor[] s = single(e, e.dtype, e.hqo, 0, e.dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode lse", IAE, "lse", e -> {
      Tensor[] s = single(e);
      Tensor[] bad = {
        e.own(Tensor.zeros(e.dev, DType.F32, e.hqo + 1)),
        e.own(Tensor.zeros(e.dev, e.dtype, e.hqo)),
        e.own(Tensor.zeros(e.dev, DType.F32, e.hqo, 2)).select(1, 1),
      };
      Tensor lse = bad[e.rnd.nextInt(e.hqo > 1 ? 3 : 2)];
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], lse, e.layout);
    });
    add("SingleDecode closed", ISE, "closed", e -> {
      Tensor[] s = single(e);
      s[e.rnd.nextInt(5)].close();
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionOptions.defaults(), null);
    });
    add("SingleDecode null", IAE, "q|k|v|out|layout|options", e -> {
      Tensor[] s = single(e);
      int w = e.rnd.nextInt(6);
      return () -> SingleDecode.run(w == 0 ? null : s[0], w == 1 ? null : s[1], w == 2 ? null : s[2],
          w == 3 ? null : s[3], s[4], w == 4 ? null : e.layout, w == 5 ? null : AttentionOptions.defaults(), null);
    });
    add("SingleDecode F32", UCE, "F32", e -> {
      Tensor[] s = single(e, DType.F32, e.hqo, e.hkv, e.dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode unsupported head dim", UCE, "head_dim", e -> {
      // CUDA: not a multiple of 16 (neither ahead of time nor compiled at run time)
      int dim = e.dev.isCpu() ? 1 + 2 * e.rnd.nextInt(8) : 72;
      Tensor[] s = single(e, e.dtype, e.hqo, e.hkv, dim, 3);
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
    });
    add("SingleDecode closed stream", ISE, "closed", e -> {
      Tensor[] s = single(e);
      Stream st = e.own(Stream.create(e.dev));
      st.close();
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionOptions.defaults(), st);
    });
    addOther("SingleDecode out on another device", "out.device|k.device|v.device", e -> {
      Tensor[] s = single(e);
      Tensor out = e.onOther(s[3]);
      return () -> SingleDecode.run(s[0], s[1], s[2], out, s[4], e.layout);
    });
    addOther("SingleDecode stream of another device", "stream.device", e -> {
      Tensor[] s = single(e);
      Stream st = e.own(Stream.create(e.other));
      return () -> SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionOptions.defaults(), st);
    });
  }

  private void batchDecode() {
    add("plan page size mismatch", IAE, "pageSize", e -> {
      int ps = e.rnd.nextBoolean() ? e.page + 1 + e.rnd.nextInt(4) : e.nonPositive();
      return () -> e.decoder().plan(e.table(), e.hqo, e.hkv, e.dim, ps, e.dtype);
    });
    add("plan head counts", IAE, "numQoHeads|numKvHeads", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      int[] bad = {hkv * 2 + 1, e.nonPositive()};
      int which = e.rnd.nextInt(3);
      return () -> e.decoder().plan(e.table(), which == 0 ? bad[0] : which == 1 ? bad[1] : e.hqo,
          which == 2 ? e.nonPositive() : hkv, e.dim, e.page, e.dtype);
    });
    add("plan head dim", IAE, "headDim", e -> () -> e.decoder().plan(e.table(), e.hqo, e.hkv, e.nonPositive(),
        e.page, e.dtype));
    add("plan unsupported dtype", UCE, "F32|I32|U8|FP8", e -> {
      DType[] bad = {DType.F32, DType.I32, DType.U8, DType.FP8_E4M3, DType.FP8_E5M2};
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> e.decoder().plan(e.table(), e.hqo, e.hkv, e.dim, e.page, dt);
    });
    add("plan unsupported head dim", UCE, "head_dim", e -> {
      int dim = e.dev.isCpu() ? 1 + 2 * e.rnd.nextInt(8) : 72 + 16 * e.rnd.nextInt(3);
      return () -> e.decoder().plan(e.table(), e.hqo, e.hkv, dim, e.page, e.dtype);
    });
    add("plan null", IAE, "pageTable|dtype|options", e -> {
      int w = e.rnd.nextInt(3);
      return () -> e.decoder().plan(w == 0 ? null : e.table(), e.hqo, e.hkv, e.dim, e.page, w == 1 ? null : e.dtype,
          w == 2 ? null : AttentionOptions.defaults());
    });
    add2("plan closed page table", IAE, ISE, "pageTable|closed", e -> {
      PageTable t = e.table();
      t.close();
      return () -> e.decoder().plan(t, e.hqo, e.hkv, e.dim, e.page, e.dtype);
    });
    add("plan/run on a closed wrapper", ISE, "closed", e -> {
      BatchDecodeWithPagedKvCache d = e.decoder();
      boolean planFirst = e.rnd.nextBoolean();
      if (planFirst) {
        d.plan(e.table(), e.hqo, e.hkv, e.dim, e.page, e.dtype);
      }
      d.close();
      return planFirst ? () -> d.run(e.q(), e.cache(), e.out(), e.lse())
          : () -> d.plan(e.table(), e.hqo, e.hkv, e.dim, e.page, e.dtype);
    });
    add("run before plan", ISE, "plan", e -> () -> e.decoder().run(e.q(), e.cache(), e.out(), e.lse()));
    add("run q/out dtype", IAE, "q.dtype|out.dtype", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.otherDtype, e.batch, e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> d.run(isQ ? bad : e.q(), e.cache(), isQ ? e.out() : bad, e.lse());
    });
    add("run q/out shape", IAE, "q.shape|out.shape", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      long[] s = {e.batch, e.hqo, e.dim};
      s[e.rnd.nextInt(3)] += 1 + e.rnd.nextInt(2);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, s));
      boolean isQ = e.rnd.nextBoolean();
      return () -> d.run(isQ ? bad : e.q(), e.cache(), isQ ? e.out() : bad, e.lse());
    });
    add("run lse", IAE, "lse.shape|lse.dtype", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      Tensor bad = e.rnd.nextBoolean() ? e.own(Tensor.zeros(e.dev, DType.F32, e.batch, e.hqo + 1))
          : e.own(Tensor.zeros(e.dev, e.dtype, e.batch, e.hqo));
      return () -> d.run(e.q(), e.cache(), e.out(), bad);
    });
    add("run cache head count", IAE, "cache.numKvHeads", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page, e.hkv + 1, e.dim));
      return () -> d.run(e.q(), c, e.out(), e.lse());
    });
    add("run cache dtype", IAE, "cache.dtype", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.otherDtype, e.layout, e.numPages, e.page, e.hkv, e.dim));
      return () -> d.run(e.q(), c, e.out(), e.lse());
    });
    add("run cache with too few pages", IAE, "kvIndices[", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      int pages = e.rnd.nextInt(e.table().maxPageId() + 1);
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.dtype, e.layout, pages, e.page, e.hkv, e.dim));
      return () -> d.run(e.q(), c, e.out(), e.lse());
    });
    add("run closed input", ISE, "closed", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      AutoCloseable[] victims = {e.q(), e.out(), e.lse(), e.cache(), e.table()};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> d.run(e.q(), e.cache(), e.out(), e.lse());
    });
    add("run null cache", IAE, "cache|q|out", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      int w = e.rnd.nextInt(3);
      return () -> d.run(w == 0 ? null : e.q(), w == 1 ? null : e.cache(), w == 2 ? null : e.out(), e.lse());
    });
    add("BatchDecode null device", IAE, "device", e -> () -> new BatchDecodeWithPagedKvCache(null));
    addOther("run q on another device", "q.device|out.device|lse.device", e -> {
      BatchDecodeWithPagedKvCache d = e.planned();
      Tensor q = e.onOther(e.q());
      return () -> d.run(q, e.cache(), e.out(), e.lse());
    });
    addOther("plan page table of another device", "pageTable.device", e -> {
      PageTable other = e.own(PageTable.of(e.other, e.page, e.indptr, e.indices, e.last));
      return () -> e.decoder().plan(other, e.hqo, e.hkv, e.dim, e.page, e.dtype);
    });
  }

  private void options() {
    add("AttentionOptions.smScale", IAE, "smScale", e -> {
      float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -1f, -Float.MIN_VALUE};
      float v = bad[e.rnd.nextInt(bad.length)];
      return () -> AttentionOptions.builder().smScale(v);
    });
    add("AttentionOptions.logitsSoftCap", IAE, "logitsSoftCap", e -> {
      float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, -1f, -1e-30f};
      float v = bad[e.rnd.nextInt(bad.length)];
      return () -> AttentionOptions.builder().logitsSoftCap(v);
    });
    add("AttentionOptions.windowLeft", IAE, "windowLeft", e -> () -> AttentionOptions.builder()
        .windowLeft(-2 - e.rnd.nextInt(Integer.MAX_VALUE)));
    add("AttentionOptions.rope", IAE, "ropeScale|ropeTheta", e -> {
      float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, 0f, -3f};
      float v = bad[e.rnd.nextInt(bad.length)];
      return e.rnd.nextBoolean() ? () -> AttentionOptions.builder().ropeScale(v)
          : () -> AttentionOptions.builder().ropeTheta(v);
    });
    add("AttentionOptions.posEncoding null", IAE, "posEncoding",
        e -> () -> AttentionOptions.builder().posEncoding(null));
  }

  /** Unmutated calls: outputs fully written, no NaN, and on CUDA the CPU backend's answer. */
  private void controls() {
    valid("valid: decode plan+run", e -> {
      Tensor out = e.out();
      Tensor lse = e.lse();
      Fuzz.poison(out, lse);
      return () -> {
        e.planned().run(e.q(), e.cache(), out, lse);
        e.dev.synchronize();
        Tensor refOut = null;
        Tensor refLse = null;
        if (e.dev.isCuda()) {
          refOut = e.own(Tensor.empty(Device.cpu(), e.dtype, e.batch, e.hqo, e.dim));
          refLse = e.own(Tensor.empty(Device.cpu(), DType.F32, e.batch, e.hqo));
          BatchDecodeWithPagedKvCache ref = e.own(new BatchDecodeWithPagedKvCache(Device.cpu()));
          ref.plan(e.cpuTable(), e.hqo, e.hkv, e.dim, e.page, e.dtype);
          ref.run(e.onCpu(e.q()), e.cpuCache(), refOut, refLse);
        }
        Fuzz.checkOutput(out, refOut, Assertions2.tolerance(e.dtype), "out");
        Fuzz.checkOutput(lse, refLse, 1e-3, "lse");
      };
    });
    valid("valid: single decode", e -> {
      Tensor[] s = single(e);
      for (int i = 0; i < 3; i++) {
        s[i].copyFrom(e.randoms(s[i].numel()));
      }
      Fuzz.poison(s[3], s[4]);
      return () -> {
        SingleDecode.run(s[0], s[1], s[2], s[3], s[4], e.layout);
        e.dev.synchronize();
        Tensor refOut = null;
        Tensor refLse = null;
        if (e.dev.isCuda()) {
          refOut = e.own(Tensor.empty(Device.cpu(), e.dtype, s[3].shape()));
          refLse = e.own(Tensor.empty(Device.cpu(), DType.F32, s[4].shape()));
          SingleDecode.run(e.onCpu(s[0]), e.onCpu(s[1]), e.onCpu(s[2]), refOut, refLse, e.layout);
        }
        Fuzz.checkOutput(s[3], refOut, Assertions2.tolerance(e.dtype), "out");
        Fuzz.checkOutput(s[4], refLse, 1e-3, "lse");
      };
    });
  }

  @ParameterizedTest
  @MethodSource("devices")
  void malformedArgumentsGiveTypedExceptions(Device device) {
    singleDecode();
    batchDecode();
    options();
    controls();
    Fuzz.run("decode", device, table, AttentionFuzzEnv::new);
  }
}
