package io.github.flashinfer4j.attention;

import static io.github.flashinfer4j.testing.Fuzz.IAE;
import static io.github.flashinfer4j.testing.Fuzz.ISE;
import static io.github.flashinfer4j.testing.Fuzz.UCE;
import static io.github.flashinfer4j.testing.Fuzz.with;
import static io.github.flashinfer4j.testing.Fuzz.withL;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Stream;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.testing.Assertions2;
import io.github.flashinfer4j.testing.Fuzz;
import io.github.flashinfer4j.testing.Gpu;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fuzz cases of prefill for {@link Fuzz}: masks, {@link SinglePrefill}, and the ragged and paged batch prefill
 * wrappers' plan and run, on every backend (CUDA included). Each mutation must give the typed exception it names;
 * the controls run on poisoned outputs, which must come back fully written, without NaN, and on CUDA within the
 * dtype's tolerance of the CPU backend.
 */
class PrefillFuzzTest {
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

  private void masks() {
    add("Masks.packbits null", IAE, "mask", e -> () -> Masks.packbits(null));
    add("Masks.segmentPackbits null", IAE, "mask|indptr", e -> {
      boolean[] m = e.bits(4);
      boolean nullMask = e.rnd.nextBoolean();
      return () -> Masks.segmentPackbits(nullMask ? null : m, nullMask ? new int[] {0, 4} : null);
    });
    add("Masks.segmentPackbits empty indptr", IAE, "indptr.length",
        e -> () -> Masks.segmentPackbits(e.bits(e.rnd.nextInt(4)), new int[0]));
    add("Masks.segmentPackbits indptr[0]", IAE, "indptr[0]", e -> {
      int[] ip = e.maskIndptr();
      boolean[] m = e.bits(ip[e.batch]);
      int[] bad = with(ip, 0, e.outside(0, 1));
      return () -> Masks.segmentPackbits(m, bad);
    });
    add("Masks.segmentPackbits negative/non-monotone indptr", IAE, "indptr[", e -> {
      int[] ip = e.maskIndptr();
      boolean[] m = e.bits(ip[e.batch]);
      int b = 1 + e.rnd.nextInt(e.batch);
      int[] bad = with(ip, b, e.rnd.nextBoolean() ? Integer.MIN_VALUE : ip[b - 1] - 1 - e.rnd.nextInt(3));
      return () -> Masks.segmentPackbits(m, bad);
    });
    add("Masks.segmentPackbits indptr beyond the mask", IAE, "indptr[", e -> {
      int[] ip = e.maskIndptr();
      int n = ip[e.batch];
      switch (e.rnd.nextInt(3)) {
        case 0: {
          boolean[] m = e.bits(n + 1 + e.rnd.nextInt(9));
          return () -> Masks.segmentPackbits(m, ip);
        }
        case 1: {
          int[] huge = with(ip, e.batch, Integer.MAX_VALUE - e.rnd.nextInt(4));
          return () -> Masks.segmentPackbits(e.bits(n), huge);
        }
        default: {
          int[] grown = Arrays.copyOf(ip, ip.length + 1);
          grown[e.batch + 1] = Integer.MAX_VALUE;  // a last segment of 2^31 - 1 - n elements
          return () -> Masks.segmentPackbits(e.bits(n), grown);
        }
      }
    });
    add("PackedMask.of malformed", IAE, "bits|indptr", e -> {
      byte[] bits = new byte[1 + e.rnd.nextInt(8)];
      switch (e.rnd.nextInt(6)) {
        case 0:
          return () -> PackedMask.of(null, new int[] {0, 1});
        case 1:
          return () -> PackedMask.of(bits, null);
        case 2:
          return () -> PackedMask.of(bits, new int[0]);
        case 3:
          return () -> PackedMask.of(bits, new int[] {e.outside(0, 1), bits.length});
        case 4:
          return () -> PackedMask.of(bits, new int[] {0, bits.length, e.rnd.nextBoolean() ? 0 : Integer.MIN_VALUE});
        default:
          return () -> PackedMask.of(bits, new int[] {0, bits.length + 1 + e.rnd.nextInt(Integer.MAX_VALUE - 9)});
      }
    });
    add("PackedMask.get out of range", IAE, "b must be|element must be", e -> {
      int[] ip = e.maskIndptr();
      PackedMask m = Masks.segmentPackbits(e.bits(ip[e.batch]), ip);
      if (e.rnd.nextBoolean()) {
        return () -> m.get(e.outside(0, e.batch), 0);
      }
      int b = e.rnd.nextInt(e.batch);
      long bytes = m.indptr()[b + 1] - (long) m.indptr()[b];
      return () -> m.get(b, e.outsideLong(0, 8 * bytes));
    });
    add("Masks.tree malformed", IAE, "prefixLen|parents", e -> {
      int n = 1 + e.rnd.nextInt(6);
      int[] parents = new int[n];
      for (int i = 0; i < n; i++) {
        parents[i] = e.rnd.nextInt(i + 1) - 1;
      }
      switch (e.rnd.nextInt(4)) {
        case 0:
          return () -> Masks.tree(e.rnd.nextBoolean() ? -1 : Integer.MIN_VALUE, parents);
        case 1:
          return () -> Masks.tree(3, null);
        case 2: {
          int i = e.rnd.nextInt(n);
          int[] bad = with(parents, i, e.rnd.nextBoolean() ? i + e.rnd.nextInt(5) : e.outside(-1, i));
          return () -> Masks.tree(e.rnd.nextInt(5), bad);
        }
        default:
          // n x (prefixLen + n) elements overflow an array
          return () -> Masks.tree(Integer.MAX_VALUE - e.rnd.nextInt(10), new int[] {-1, 0});
      }
    });
    add("AttentionMask factories null", IAE, "mask", e -> e.rnd.nextBoolean()
        ? () -> AttentionMask.custom(null) : () -> AttentionMask.packed(null));
  }

  /** Single-prefill operands: q [qoLen, Hqo, D], k/v [kvLen, Hkv, D] or [Hkv, kvLen, D], out, lse (guarded). */
  private static Tensor[] prefillOperands(AttentionFuzzEnv e, DType dt, int hqo, int hkv, int dim, int qoLen,
      int kvLen) {
    long[] kvShape = e.raggedShape(kvLen, hkv, dim);
    Tensor q = e.own(Tensor.zeros(e.dev, dt, qoLen, hqo, dim));
    Tensor k = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor v = e.own(Tensor.zeros(e.dev, dt, kvShape));
    Tensor out = e.guardedTensor(dt, qoLen, hqo, dim);
    Tensor lse = e.guardedTensor(DType.F32, qoLen, hqo);
    e.watched.add(out);
    e.watched.add(lse);
    return new Tensor[] {q, k, v, out, lse};
  }

  private static Tensor[] prefillOperands(AttentionFuzzEnv e) {
    return prefillOperands(e, e.dtype, e.hqo, e.hkv, e.dim, 1 + e.rnd.nextInt(6), e.rnd.nextInt(9));
  }

  /** A valid mask for one request of qoLen x kvLen. */
  private static AttentionMask singleMask(AttentionFuzzEnv e, long qoLen, long kvLen) {
    int n = (int) (qoLen * kvLen);
    switch (e.rnd.nextInt(4)) {
      case 0:
        return AttentionMask.none();
      case 1:
        return AttentionMask.causal();
      case 2:
        return AttentionMask.custom(e.bits(n));
      default:
        return AttentionMask.packed(Masks.segmentPackbits(e.bits(n), new int[] {0, n}));
    }
  }

  private static AttentionMask singleMask(AttentionFuzzEnv e, Tensor[] s) {
    return singleMask(e, s[0].size(0), s[1].size(e.layout == KvLayout.NHD ? 0 : 1));
  }

  private void singlePrefill() {
    add("SinglePrefill q rank", IAE, "q.dim()", e -> {
      Tensor[] s = prefillOperands(e);
      Tensor q2 = s[0].reshape(s[0].size(0), (long) e.hqo * e.dim);
      return () -> SinglePrefill.run(q2, s[1], s[2], s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill k rank", IAE, "k.dim()", e -> {
      Tensor[] s = prefillOperands(e);
      Tensor k1 = s[1].reshape(s[1].numel());
      return () -> SinglePrefill.run(s[0], k1, k1, s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill v shape", IAE, "v.shape", e -> {
      Tensor[] s = prefillOperands(e);
      long[] sh = s[1].shape();
      int i = e.rnd.nextInt(3);
      Tensor v = e.own(Tensor.zeros(e.dev, e.dtype, withL(sh, i, sh[i] + 1)));
      return () -> SinglePrefill.run(s[0], s[1], v, s[3], s[4], e.layout, singleMask(e, s));
    });
    add("SinglePrefill out shape", IAE, "out.shape", e -> {
      Tensor[] s = prefillOperands(e);
      long[] sh = s[0].shape();
      int i = e.rnd.nextInt(3);
      Tensor out = e.own(Tensor.zeros(e.dev, e.dtype, withL(sh, i, sh[i] + 1 + e.rnd.nextInt(3))));
      return () -> SinglePrefill.run(s[0], s[1], s[2], out, s[4], e.layout, singleMask(e, s));
    });
    add("SinglePrefill mixed dtypes", IAE, "k.dtype|v.dtype|out.dtype", e -> {
      Tensor[] s = prefillOperands(e);
      int kvLen = (int) s[1].size(e.layout == KvLayout.NHD ? 0 : 1);
      Tensor[] o = prefillOperands(e, e.otherDtype, e.hqo, e.hkv, e.dim, (int) s[0].size(0), kvLen);
      int i = 1 + e.rnd.nextInt(3);
      Tensor[] m = s.clone();
      m[i] = o[i];
      if (i == 1) {
        m[2] = o[2];  // k and v of the other dtype together: k.dtype is named
      }
      return () -> SinglePrefill.run(m[0], m[1], m[2], m[3], m[4], e.layout, singleMask(e, s));
    });
    add("SinglePrefill head counts", IAE, "numQoHeads", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      Tensor[] s = prefillOperands(e, e.dtype, hkv * (1 + e.rnd.nextInt(2)) + 1, hkv, e.dim, 2, 3);
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.causal());
    });
    add("SinglePrefill head dim mismatch", IAE, "k.size(2)", e -> {
      Tensor[] s = prefillOperands(e);
      Tensor[] o = prefillOperands(e, e.dtype, e.hqo, e.hkv, e.dim * 2, 1, 3);
      return () -> SinglePrefill.run(s[0], o[1], o[2], s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill no KV heads", IAE, "numKvHeads", e -> {
      Tensor[] s = prefillOperands(e, e.dtype, e.hqo, 0, e.dim, 2, 3);
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.none());
    });
    add("SinglePrefill lse", IAE, "lse", e -> {
      Tensor[] s = prefillOperands(e);
      long qo = s[0].size(0);
      Tensor[] bad = {
        e.own(Tensor.zeros(e.dev, DType.F32, qo, e.hqo + 1)),
        e.own(Tensor.zeros(e.dev, DType.F32, qo + 1, e.hqo)),
        e.own(Tensor.zeros(e.dev, e.dtype, qo, e.hqo)),
        e.own(Tensor.zeros(e.dev, DType.F32, qo, e.hqo, 2)).select(2, 1),
      };
      Tensor lse = bad[e.rnd.nextInt(e.hqo > 1 ? 4 : 3)];
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], lse, e.layout, singleMask(e, s));
    });
    add("SinglePrefill custom mask length", IAE, "mask.length", e -> {
      Tensor[] s = prefillOperands(e);
      int n = (int) (s[0].size(0) * s[1].size(e.layout == KvLayout.NHD ? 0 : 1));
      int len = e.rnd.nextBoolean() || n == 0 ? n + 1 + e.rnd.nextInt(20) : e.rnd.nextInt(n);
      AttentionMask m = AttentionMask.custom(e.bits(len));
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, m, AttentionOptions.defaults(), null);
    });
    add("SinglePrefill packed mask for another batch", IAE, "mask.batchSize()|mask.indptr()[1]", e -> {
      int qo = 1 + e.rnd.nextInt(5);
      int kv = 1 + e.rnd.nextInt(8);
      Tensor[] s = prefillOperands(e, e.dtype, e.hqo, e.hkv, e.dim, qo, kv);
      int n = qo * kv;
      PackedMask p = e.rnd.nextBoolean()
          ? Masks.segmentPackbits(e.bits(2 * n), new int[] {0, n, 2 * n})   // two requests
          : PackedMask.of(new byte[(n + 7) / 8 - 1], new int[] {0, (n + 7) / 8 - 1});  // one byte short
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.packed(p));
    });
    add("SinglePrefill closed", ISE, "closed", e -> {
      Tensor[] s = prefillOperands(e);
      AttentionMask m = singleMask(e, s);
      s[e.rnd.nextInt(5)].close();
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, m, AttentionOptions.defaults(), null);
    });
    add("SinglePrefill null", IAE, "q|k|v|out|layout|mask|options", e -> {
      Tensor[] s = prefillOperands(e);
      AttentionMask m = singleMask(e, s);
      int w = e.rnd.nextInt(7);
      return () -> SinglePrefill.run(w == 0 ? null : s[0], w == 1 ? null : s[1], w == 2 ? null : s[2],
          w == 3 ? null : s[3], s[4], w == 4 ? null : e.layout, w == 5 ? null : m,
          w == 6 ? null : AttentionOptions.defaults(), null);
    });
    add("SinglePrefill unsupported dtype/head dim", UCE, "dtype|head_dim", e -> {
      // F32 everywhere (checked before the device's own limits); on the CPU also an odd head dim
      boolean oddDim = e.dev.isCpu() && e.rnd.nextBoolean();
      Tensor[] s = oddDim ? prefillOperands(e, e.dtype, e.hqo, e.hkv, 1 + 2 * e.rnd.nextInt(8), 2, 3)
          : prefillOperands(e, DType.F32, e.hqo, e.hkv, e.dim, 2, 3);
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.causal());
    });
    add("SinglePrefill closed stream", ISE, "closed", e -> {
      Tensor[] s = prefillOperands(e);
      Stream st = e.own(Stream.create(e.dev));
      st.close();
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, singleMask(e, s),
          AttentionOptions.defaults(), st);
    });
    addOther("SinglePrefill out on another device", "out.device|k.device|v.device|lse.device", e -> {
      Tensor[] s = prefillOperands(e);
      int i = 1 + e.rnd.nextInt(4);
      Tensor[] m = s.clone();
      m[i] = e.onOther(s[i]);
      if (i == 1) {
        m[2] = e.onOther(s[2]);
      }
      return () -> SinglePrefill.run(m[0], m[1], m[2], m[3], m[4], e.layout, AttentionMask.none());
    });
    addOther("SinglePrefill stream of another device", "stream.device", e -> {
      Tensor[] s = prefillOperands(e);
      Stream st = e.own(Stream.create(e.other));
      return () -> SinglePrefill.run(s[0], s[1], s[2], s[3], s[4], e.layout, AttentionMask.none(),
          AttentionOptions.defaults(), st);
    });
  }

  /** Mutations of a prefill plan's batch and mask shared by the ragged and paged wrappers. */
  private interface PrefillPlanner {
    void plan(AttentionFuzzEnv e, int[] qoIndptr, int numQoHeads, int numKvHeads, int headDim, DType dtype,
        AttentionMask mask, AttentionOptions options, Stream stream);
  }

  private void prefillPlanMutations(String op, PrefillPlanner p) {
    add(op + " plan qoIndptr [0]/non-monotone/negative", IAE, "qoIndptr[", e -> {
      int[] ip = e.qoIndptr();
      int b = e.rnd.nextInt(e.batch + 1);
      int v = b == 0 ? e.outside(0, 1)
          : e.rnd.nextBoolean() ? Integer.MIN_VALUE : ip[b - 1] - 1 - e.rnd.nextInt(3);
      int[] bad = with(ip, b, v);
      return () -> p.plan(e, bad, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal(), AttentionOptions.defaults(),
          null);
    });
    add(op + " plan qoIndptr length", IAE, "qoIndptr.length", e -> {
      int[] ip = e.qoIndptr();
      int[] bad;
      switch (e.rnd.nextInt(3)) {
        case 0:
          bad = new int[0];
          break;
        case 1:
          bad = Arrays.copyOf(ip, ip.length - 1);
          break;
        default:
          bad = Arrays.copyOf(ip, ip.length + 1);
          bad[ip.length] = ip[e.batch] + e.rnd.nextInt(3);
      }
      int[] fin = bad;
      return () -> p.plan(e, fin, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none(), AttentionOptions.defaults(),
          null);
    });
    add(op + " plan null", IAE, "qoIndptr|dtype|mask|options", e -> {
      int w = e.rnd.nextInt(4);
      return () -> p.plan(e, w == 0 ? null : e.qoIndptr(), e.hqo, e.hkv, e.dim, w == 1 ? null : e.dtype,
          w == 2 ? null : e.prefillMask(), w == 3 ? null : AttentionOptions.defaults(), null);
    });
    add(op + " plan head counts", IAE, "numQoHeads|numKvHeads|headDim", e -> {
      int hkv = 2 + e.rnd.nextInt(3);
      switch (e.rnd.nextInt(4)) {
        case 0:
          return () -> p.plan(e, e.qoIndptr(), hkv * 2 + 1, hkv, e.dim, e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
        case 1:
          return () -> p.plan(e, e.qoIndptr(), e.nonPositive(), hkv, e.dim, e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
        case 2:
          return () -> p.plan(e, e.qoIndptr(), e.hqo, e.nonPositive(), e.dim, e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
        default:
          return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.nonPositive(), e.dtype, AttentionMask.none(),
              AttentionOptions.defaults(), null);
      }
    });
    add(op + " plan custom mask of the wrong length", IAE, "mask.length", e -> {
      int n = e.maskIndptr()[e.batch];
      int len = e.rnd.nextBoolean() || n == 0 ? n + 1 + e.rnd.nextInt(30) : e.rnd.nextInt(n);
      AttentionMask m = AttentionMask.custom(e.bits(len));
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, m, AttentionOptions.defaults(), null);
    });
    add(op + " plan packed mask of another batch or too short", IAE, "mask.batchSize()|mask.indptr()[", e -> {
      int[] ip = e.maskIndptr();
      PackedMask pm;
      if (e.rnd.nextBoolean()) {
        int[] more = Arrays.copyOf(ip, ip.length + (e.batch > 1 && e.rnd.nextBoolean() ? -1 : 1));
        if (more.length > ip.length) {
          more[ip.length] = ip[e.batch] + e.rnd.nextInt(9);
        }
        pm = Masks.segmentPackbits(e.bits(more[more.length - 1]), more);
      } else {
        // request 0 (qoLen >= 1, kvLen >= 1) gets one byte fewer than its bits need
        int[] bytes = new int[e.batch + 1];
        for (int b = 0; b < e.batch; b++) {
          long need = ((long) e.qoLens()[b] * e.lens[b] + 7) / 8;
          bytes[b + 1] = bytes[b] + (int) need - (b == 0 ? 1 : 0);
        }
        pm = PackedMask.of(new byte[bytes[e.batch]], bytes);
      }
      AttentionMask m = AttentionMask.packed(pm);
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, m, AttentionOptions.defaults(), null);
    });
    add(op + " plan unsupported dtype/head dim", UCE, "dtype|head_dim", e -> {
      DType[] bad = {DType.F32, DType.I32, DType.U8, DType.FP8_E4M3, DType.FP8_E5M2};
      if (e.dev.isCpu() && e.rnd.nextBoolean()) {
        int dim = 1 + 2 * e.rnd.nextInt(8);
        return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, dim, e.dtype, AttentionMask.causal(),
            AttentionOptions.defaults(), null);
      }
      DType dt = bad[e.rnd.nextInt(bad.length)];
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, dt, AttentionMask.causal(),
          AttentionOptions.defaults(), null);
    });
    add(op + " plan closed stream", ISE, "closed", e -> {
      Stream st = e.own(Stream.create(e.dev));
      st.close();
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none(),
          AttentionOptions.defaults(), st);
    });
    addOther(op + " plan stream of another device", "stream.device", e -> {
      Stream st = e.own(Stream.create(e.other));
      return () -> p.plan(e, e.qoIndptr(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none(),
          AttentionOptions.defaults(), st);
    });
  }

  private void raggedPrefill() {
    prefillPlanMutations("ragged prefill", (e, qo, hq, hkv, dim, dt, m, o, st) ->
        e.ragged().plan(qo, e.kvIndptr(), hq, hkv, dim, dt, m, o, st));
    add("ragged prefill plan kvIndptr [0]/non-monotone/negative", IAE, "kvIndptr[", e -> {
      int[] ip = e.kvIndptr();
      int b = e.rnd.nextInt(e.batch + 1);
      int v = b == 0 ? e.outside(0, 1)
          : e.rnd.nextBoolean() ? Integer.MIN_VALUE : ip[b - 1] - 1 - e.rnd.nextInt(3);
      int[] bad = with(ip, b, v);
      return () -> e.ragged().plan(e.qoIndptr(), bad, e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask());
    });
    add("ragged prefill plan qo/kv batch mismatch", IAE, "kvIndptr.length", e -> {
      int[] ip = e.kvIndptr();
      int[] bad = Arrays.copyOf(ip, ip.length + (e.batch > 1 && e.rnd.nextBoolean() ? -1 : 1));
      if (bad.length > ip.length) {
        bad[ip.length] = ip[e.batch] + e.rnd.nextInt(5);
      }
      return () -> e.ragged().plan(e.qoIndptr(), bad, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    add("ragged prefill plan null kvIndptr", IAE, "kvIndptr", e ->
        () -> e.ragged().plan(e.qoIndptr(), null, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal()));
    add("ragged prefill plan custom mask of 2^32 elements", IAE, "mask size|mask.indptr()[1]", e -> {
      int n = (1 << 16) + e.rnd.nextInt(1000);
      AttentionMask m = e.rnd.nextBoolean() ? AttentionMask.custom(e.bits(e.rnd.nextInt(16)))
          : AttentionMask.packed(PackedMask.of(new byte[8], new int[] {0, 8}));
      return () -> e.ragged().plan(new int[] {0, n}, new int[] {0, n}, e.hqo, e.hkv, e.dim, e.dtype, m);
    });
    add("ragged prefill constructor", IAE, "device|layout|workspace", e -> {
      switch (e.rnd.nextInt(4)) {
        case 0:
          return () -> new BatchPrefillWithRaggedKvCache(null);
        case 1:
          return () -> new BatchPrefillWithRaggedKvCache(e.dev, null, null);
        case 2: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.F32, 64));
          return () -> new BatchPrefillWithRaggedKvCache(e.dev, e.layout, ws);
        }
        default: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.U8, 64, 2)).select(1, 0);
          return () -> new BatchPrefillWithRaggedKvCache(e.dev, e.layout, ws);
        }
      }
    });
    add("ragged prefill plan/run on a closed wrapper", ISE, "closed", e -> {
      BatchPrefillWithRaggedKvCache r = e.ragged();
      boolean planFirst = e.rnd.nextBoolean();
      if (planFirst) {
        r.plan(e.qoIndptr(), e.kvIndptr(), e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask());
      }
      r.close();
      Tensor[] kv = e.raggedKv();
      return planFirst ? () -> r.run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse())
          : () -> r.plan(e.qoIndptr(), e.kvIndptr(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    add("ragged prefill run before plan", ISE, "plan", e -> {
      Tensor[] kv = e.raggedKv();
      return () -> e.ragged().run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse());
    });
    add("ragged prefill run q/out rows", IAE, "q.shape|out.shape", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, e.nnzQo() + (e.rnd.nextBoolean() ? 1 + e.rnd.nextInt(3) : -1),
          e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> r.run(isQ ? bad : e.prefillQ(), kv[0], kv[1], isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    add("ragged prefill run q/out dtype", IAE, "q.dtype|out.dtype", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.otherDtype, e.nnzQo(), e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> r.run(isQ ? bad : e.prefillQ(), kv[0], kv[1], isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    add("ragged prefill run lse", IAE, "lse", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Tensor[] bad = {
        e.own(Tensor.zeros(e.dev, DType.F32, e.nnzQo() + 1, e.hqo)),
        e.own(Tensor.zeros(e.dev, e.dtype, e.nnzQo(), e.hqo)),
        e.own(Tensor.zeros(e.dev, DType.F32, e.nnzQo(), e.hqo, 2)).select(2, 0),
      };
      Tensor lse = bad[e.rnd.nextInt(e.hqo > 1 ? 3 : 2)];
      return () -> r.run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), lse);
    });
    add("ragged prefill run k/v length or heads mismatch", IAE, "k.shape|v.shape", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      boolean moreTokens = e.rnd.nextBoolean();
      long tokens = moreTokens ? e.nnzKv() + 1 + e.rnd.nextInt(3) : e.nnzKv() - 1;
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, moreTokens || tokens >= 0
          ? e.raggedShape(tokens, e.hkv, e.dim) : e.raggedShape(e.nnzKv(), e.hkv + 1, e.dim)));
      boolean isK = e.rnd.nextBoolean();
      return () -> r.run(e.prefillQ(), isK ? bad : kv[0], isK ? kv[1] : bad, e.prefillOut(), e.prefillLse());
    });
    add("ragged prefill run k/v dtype or strides", IAE, "k.dtype|v.dtype|k.stride(2)|v.stride(2)", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      long[] sh = e.raggedShape(e.nnzKv(), e.hkv, e.dim);
      Tensor bad = e.rnd.nextBoolean() ? e.own(Tensor.zeros(e.dev, e.otherDtype, sh))
          : e.own(Tensor.zeros(e.dev, e.dtype, sh[0], sh[1], sh[2], 2)).select(3, 1);
      boolean isK = e.rnd.nextBoolean();
      return () -> r.run(e.prefillQ(), isK ? bad : kv[0], isK ? kv[1] : bad, e.prefillOut(), e.prefillLse());
    });
    add("ragged prefill run closed input", ISE, "closed", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      Stream st = e.own(Stream.create(e.dev));
      AutoCloseable[] victims = {e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse(), st};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> r.run(e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse(), st);
    });
    add("ragged prefill run null", IAE, "q|k|v|out", e -> {
      BatchPrefillWithRaggedKvCache r = e.plannedRagged();
      Tensor[] kv = e.raggedKv();
      int w = e.rnd.nextInt(4);
      return () -> r.run(w == 0 ? null : e.prefillQ(), w == 1 ? null : kv[0], w == 2 ? null : kv[1],
          w == 3 ? null : e.prefillOut(), e.prefillLse());
    });
    addOther("ragged prefill run input on another device",
        "q.device|k.device|v.device|out.device|lse.device|stream.device", e -> {
          BatchPrefillWithRaggedKvCache r = e.plannedRagged();
          Tensor[] kv = e.raggedKv();
          Tensor[] args = {e.prefillQ(), kv[0], kv[1], e.prefillOut(), e.prefillLse()};
          int i = e.rnd.nextInt(6);
          if (i == 5) {
            Stream st = e.own(Stream.create(e.other));
            return () -> r.run(args[0], args[1], args[2], args[3], args[4], st);
          }
          args[i] = e.onOther(args[i]);
          return () -> r.run(args[0], args[1], args[2], args[3], args[4]);
        });
  }

  private void pagedPrefill() {
    prefillPlanMutations("paged prefill", (e, qo, hq, hkv, dim, dt, m, o, st) ->
        e.pagedPrefill().plan(qo, e.table(), hq, hkv, dim, dt, m, o, st));
    add("paged prefill plan null page table", IAE, "pageTable", e ->
        () -> e.pagedPrefill().plan(e.qoIndptr(), null, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal()));
    add2("paged prefill plan closed page table", IAE, ISE, "pageTable|closed", e -> {
      PageTable t = e.table();
      t.close();
      return () -> e.pagedPrefill().plan(e.qoIndptr(), t, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    addOther("paged prefill plan page table of another device", "pageTable.device", e -> {
      PageTable other = e.own(PageTable.of(e.other, e.page, e.indptr, e.indices, e.last));
      return () -> e.pagedPrefill().plan(e.qoIndptr(), other, e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.none());
    });
    add("paged prefill constructor", IAE, "device|workspace", e -> {
      switch (e.rnd.nextInt(3)) {
        case 0:
          return () -> new BatchPrefillWithPagedKvCache(null);
        case 1: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.I32, 16));
          return () -> new BatchPrefillWithPagedKvCache(e.dev, ws);
        }
        default: {
          Tensor ws = e.own(Tensor.zeros(e.dev, DType.U8, 64, 2)).select(1, 1);
          return () -> new BatchPrefillWithPagedKvCache(e.dev, ws);
        }
      }
    });
    add("paged prefill plan/run on a closed wrapper", ISE, "closed", e -> {
      BatchPrefillWithPagedKvCache p = e.pagedPrefill();
      boolean planFirst = e.rnd.nextBoolean();
      if (planFirst) {
        p.plan(e.qoIndptr(), e.table(), e.hqo, e.hkv, e.dim, e.dtype, e.prefillMask());
      }
      p.close();
      return planFirst ? () -> p.run(e.prefillQ(), e.cache(), e.prefillOut(), e.prefillLse())
          : () -> p.plan(e.qoIndptr(), e.table(), e.hqo, e.hkv, e.dim, e.dtype, AttentionMask.causal());
    });
    add("paged prefill run before plan", ISE, "plan", e ->
        () -> e.pagedPrefill().run(e.prefillQ(), e.cache(), e.prefillOut(), e.prefillLse()));
    add("paged prefill run q/out rows or heads", IAE, "q.shape|out.shape", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      long[] sh = {e.nnzQo(), e.hqo, e.dim};
      int i = e.rnd.nextInt(3);
      sh[i] += i == 0 && e.rnd.nextBoolean() ? -1 : 1 + e.rnd.nextInt(2);
      Tensor bad = e.own(Tensor.zeros(e.dev, e.dtype, sh));
      boolean isQ = e.rnd.nextBoolean();
      return () -> p.run(isQ ? bad : e.prefillQ(), e.cache(), isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    add("paged prefill run q/out dtype", IAE, "q.dtype|out.dtype", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Tensor bad = e.own(Tensor.zeros(e.dev, e.otherDtype, e.nnzQo(), e.hqo, e.dim));
      boolean isQ = e.rnd.nextBoolean();
      return () -> p.run(isQ ? bad : e.prefillQ(), e.cache(), isQ ? e.prefillOut() : bad, e.prefillLse());
    });
    add("paged prefill run lse", IAE, "lse", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Tensor bad = e.rnd.nextBoolean() ? e.own(Tensor.zeros(e.dev, DType.F32, e.nnzQo(), e.hqo + 1))
          : e.own(Tensor.zeros(e.dev, e.dtype, e.nnzQo(), e.hqo));
      return () -> p.run(e.prefillQ(), e.cache(), e.prefillOut(), bad);
    });
    add("paged prefill run cache of another shape", IAE,
        "cache.numKvHeads|cache.dtype|cache.headDim|cache.pageSize", e -> {
          BatchPrefillWithPagedKvCache p = e.plannedPaged();
          PagedKvCache c;
          switch (e.rnd.nextInt(4)) {
            case 0:
              c = PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page, e.hkv + 1, e.dim);
              break;
            case 1:
              c = PagedKvCache.allocate(e.dev, e.otherDtype, e.layout, e.numPages, e.page, e.hkv, e.dim);
              break;
            case 2:
              c = PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page, e.hkv, e.dim * 2);
              break;
            default:
              c = PagedKvCache.allocate(e.dev, e.dtype, e.layout, e.numPages, e.page + 1, e.hkv, e.dim);
          }
          PagedKvCache cache = e.own(c);
          return () -> p.run(e.prefillQ(), cache, e.prefillOut(), e.prefillLse());
        });
    add("paged prefill run cache with too few pages", IAE, "kvIndices[", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      int pages = e.rnd.nextInt(e.table().maxPageId() + 1);
      PagedKvCache c = e.own(PagedKvCache.allocate(e.dev, e.dtype, e.layout, pages, e.page, e.hkv, e.dim));
      return () -> p.run(e.prefillQ(), c, e.prefillOut(), e.prefillLse());
    });
    add("paged prefill run closed input", ISE, "closed", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Stream st = e.own(Stream.create(e.dev));
      AutoCloseable[] victims = {e.prefillQ(), e.prefillOut(), e.prefillLse(), e.cache(), e.table(), st};
      victims[e.rnd.nextInt(victims.length)].close();
      return () -> p.run(e.prefillQ(), e.cache(), e.prefillOut(), e.prefillLse(), st);
    });
    add("paged prefill run null", IAE, "cache|q|out", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      int w = e.rnd.nextInt(3);
      return () -> p.run(w == 0 ? null : e.prefillQ(), w == 1 ? null : e.cache(), w == 2 ? null : e.prefillOut(),
          e.prefillLse());
    });
    addOther("paged prefill run input on another device", "q.device|out.device|lse.device|stream.device", e -> {
      BatchPrefillWithPagedKvCache p = e.plannedPaged();
      Tensor[] args = {e.prefillQ(), e.prefillOut(), e.prefillLse()};
      int i = e.rnd.nextInt(4);
      if (i == 3) {
        Stream st = e.own(Stream.create(e.other));
        return () -> p.run(args[0], e.cache(), args[1], args[2], st);
      }
      args[i] = e.onOther(args[i]);
      return () -> p.run(args[0], e.cache(), args[1], args[2]);
    });
  }

  /** A random valid variant: defaults, soft cap, window, RoPE. */
  private static AttentionOptions randomOptions(AttentionFuzzEnv e) {
    AttentionOptions.Builder b = AttentionOptions.builder();
    if (e.rnd.nextBoolean()) {
      b.logitsSoftCap(1 + e.rnd.nextInt(50));
    }
    if (e.rnd.nextBoolean()) {
      b.windowLeft(e.rnd.nextInt(8));
    }
    if (e.rnd.nextInt(3) == 0) {
      b.posEncoding(PosEncoding.ROPE_LLAMA);
    }
    return b.build();
  }

  /** Reference outputs on the CPU backend for a CUDA prefill control: {out, lse or null}. */
  private static Tensor[] cpuOutputs(AttentionFuzzEnv e, Tensor out, Tensor lse) {
    return new Tensor[] {e.own(Tensor.empty(Device.cpu(), e.dtype, out.shape())),
      lse == null ? null : e.own(Tensor.empty(Device.cpu(), DType.F32, lse.shape()))};
  }

  private static void checkOutputs(AttentionFuzzEnv e, Tensor out, Tensor lse, Tensor[] ref) {
    Fuzz.checkOutput(out, ref == null ? null : ref[0], Assertions2.tolerance(e.dtype), "out");
    if (lse != null) {
      Fuzz.checkOutput(lse, ref == null ? null : ref[1], 1e-3, "lse");
    }
  }

  /**
   * Unmutated prefill calls on every backend: outputs poisoned first must come back fully written, without NaN, and
   * on CUDA within the dtype's tolerance of the CPU backend (the same plan arguments, copies of the inputs).
   */
  private void prefillControls() {
    valid("valid: ragged prefill plan+run", e -> {
      Tensor[] kv = e.raggedKv();
      AttentionOptions o = randomOptions(e);
      AttentionMask mask = e.prefillMask();
      Tensor out = e.prefillOut();
      Tensor lse = e.rnd.nextBoolean() ? e.prefillLse() : null;
      Fuzz.poison(out, lse);
      return () -> {
        BatchPrefillWithRaggedKvCache r = e.ragged();
        r.plan(e.qoIndptr(), e.kvIndptr(), e.hqo, e.hkv, e.dim, e.dtype, mask, o, null);
        r.run(e.prefillQ(), kv[0], kv[1], out, lse);
        e.dev.synchronize();
        Tensor[] ref = null;
        if (e.dev.isCuda()) {
          ref = cpuOutputs(e, out, lse);
          BatchPrefillWithRaggedKvCache c = e.own(new BatchPrefillWithRaggedKvCache(Device.cpu(), e.layout, null));
          c.plan(e.qoIndptr(), e.kvIndptr(), e.hqo, e.hkv, e.dim, e.dtype, mask, o, null);
          c.run(e.onCpu(e.prefillQ()), e.onCpu(kv[0]), e.onCpu(kv[1]), ref[0], ref[1]);
        }
        checkOutputs(e, out, lse, ref);
      };
    });
    valid("valid: paged prefill plan+run", e -> {
      AttentionOptions o = randomOptions(e);
      AttentionMask mask = e.prefillMask();
      Tensor out = e.prefillOut();
      Tensor lse = e.prefillLse();
      Fuzz.poison(out, lse);
      return () -> {
        BatchPrefillWithPagedKvCache p = e.pagedPrefill();
        p.plan(e.qoIndptr(), e.table(), e.hqo, e.hkv, e.dim, e.dtype, mask, o, null);
        p.run(e.prefillQ(), e.cache(), out, lse);
        e.dev.synchronize();
        Tensor[] ref = null;
        if (e.dev.isCuda()) {
          ref = cpuOutputs(e, out, lse);
          BatchPrefillWithPagedKvCache c = e.own(new BatchPrefillWithPagedKvCache(Device.cpu()));
          c.plan(e.qoIndptr(), e.cpuTable(), e.hqo, e.hkv, e.dim, e.dtype, mask, o, null);
          c.run(e.onCpu(e.prefillQ()), e.cpuCache(), ref[0], ref[1]);
        }
        checkOutputs(e, out, lse, ref);
      };
    });
    valid("valid: single prefill", e -> {
      Tensor[] s = prefillOperands(e);
      for (int i = 0; i < 3; i++) {
        s[i].copyFrom(e.randoms(s[i].numel()));
      }
      AttentionMask m = singleMask(e, s);
      AttentionOptions o = randomOptions(e);
      Tensor lse = e.rnd.nextBoolean() ? s[4] : null;
      Fuzz.poison(s[3], lse);
      return () -> {
        SinglePrefill.run(s[0], s[1], s[2], s[3], lse, e.layout, m, o, null);
        e.dev.synchronize();
        Tensor[] ref = null;
        if (e.dev.isCuda()) {
          ref = cpuOutputs(e, s[3], lse);
          SinglePrefill.run(e.onCpu(s[0]), e.onCpu(s[1]), e.onCpu(s[2]), ref[0], ref[1], e.layout, m, o, null);
        }
        checkOutputs(e, s[3], lse, ref);
      };
    });
    valid("valid: mask packing", e -> {
      int[] ip = e.maskIndptr();
      boolean[] bits = e.bits(ip[e.batch]);
      return () -> {
        PackedMask p = Masks.segmentPackbits(bits, ip);
        PackedMask same = PackedMask.of(p.bits(), p.indptr());
        for (int b = 0; b < e.batch; b++) {
          for (int i = ip[b]; i < ip[b + 1]; i++) {
            if (same.get(b, i - ip[b]) != bits[i]) {
              fail("segmentPackbits lost element " + i + " of request " + b);
            }
          }
        }
        byte[] flat = Masks.packbits(bits);
        assertTrue(flat.length == (bits.length + 7) / 8, "packbits length");
      };
    });
  }

  @ParameterizedTest
  @MethodSource("devices")
  void malformedArgumentsGiveTypedExceptions(Device device) {
    masks();
    singlePrefill();
    raggedPrefill();
    pagedPrefill();
    prefillControls();
    Fuzz.run("prefill", device, table, AttentionFuzzEnv::new);
  }
}
