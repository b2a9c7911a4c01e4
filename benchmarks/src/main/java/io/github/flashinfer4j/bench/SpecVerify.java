package io.github.flashinfer4j.bench;

import io.github.flashinfer4j.DType;
import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.AttentionMask;
import io.github.flashinfer4j.attention.BatchPrefillWithPagedKvCache;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.Masks;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKv;
import io.github.flashinfer4j.attention.PagedKvCache;
import io.github.flashinfer4j.attention.SingleDecode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * {@code spec-verify}: speculative-decoding verification of a draft tree in one prefill call.
 *
 * <p>The "target model" is a toy: one attention layer whose query, key and value for a token are rows of fixed
 * random tables, and whose next-token logits are the attention output times a random unembedding. The "drafter"
 * runs the same toy model one path at a time (one {@link SingleDecode} per node, the slow way) with noise on its
 * logits, and proposes its top-k tokens as the children of each node of a fixed EAGLE-style tree. Verification
 * then appends the 14 draft tokens to the paged cache after the prompt and runs ONE
 * {@link BatchPrefillWithPagedKvCache} call with the {@link Masks#tree} mask: every node attends to the prompt and
 * its ancestors only, so its output equals the path computation, which the table shows per node. A greedy walk
 * from the root then accepts children whose token is the target's argmax.
 *
 * <p>In a real engine the accepted tokens' K/V are then moved to consecutive positions (the verify step wrote node
 * i at {@code prompt + i}), the cache length is set to {@code prompt + accepted}, and with RoPE the drafts' q/k are
 * rotated at {@code prompt + depth} before appending (see {@link Masks#tree}).
 */
final class SpecVerify {
  private static final int QO_HEADS = 8;
  private static final int KV_HEADS = 2;
  private static final int HEAD_DIM = 128;
  private static final int PAGE_SIZE = 16;
  private static final int VOCAB = 64;
  private static final DType DTYPE = DType.BF16;

  /**
   * The draft tree: node 0 is the token the target sampled last step, 1-3 the drafter's top-3 for the next
   * position, then 3, 2 and 1 guesses below them and a third level.
   * <pre>
   *   prompt ... ── 0 ─┬─ 1 ─┬─ 4 ─┬─ 10
   *                    │     │     └─ 11
   *                    │     ├─ 5 ─── 12
   *                    │     └─ 6
   *                    ├─ 2 ─┬─ 7 ─── 13
   *                    │     └─ 8
   *                    └─ 3 ─── 9
   * </pre>
   */
  private static final int[] PARENTS = {-1, 0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 5, 7};

  private SpecVerify() {}

  static int run(String[] args) {
    boolean forceCpu = args.length > 0 && args[0].equals("--cpu");
    Device device = forceCpu ? Device.cpu() : Device.best();
    int n = PARENTS.length;
    System.out.println("flashinfer4j spec-verify: a draft tree of " + n + " tokens verified in one prefill call");
    System.out.println("device: " + device + " (" + device.name() + "), heads " + QO_HEADS + "/" + KV_HEADS
        + ", head_dim " + HEAD_DIM + ", page size " + PAGE_SIZE + ", " + DTYPE);

    // the toy model: per-token q/k/v rows and an unembedding
    Random rnd = new Random(2024);
    float[][] qTab = table(rnd, VOCAB, QO_HEADS * HEAD_DIM, 1f);
    float[][] kTab = table(rnd, VOCAB, KV_HEADS * HEAD_DIM, 1f);
    float[][] vTab = table(rnd, VOCAB, KV_HEADS * HEAD_DIM, 1f);
    float[][] unembed = table(rnd, VOCAB, QO_HEADS * HEAD_DIM, 1f);
    int prompt = 45;  // the prompt's 3 pages hold tokens 0..44; the drafts go to 45..58, across the page at 48
    int[] tokens = new int[prompt + n];
    for (int i = 0; i < prompt; i++) {
      tokens[i] = rnd.nextInt(VOCAB);
    }

    // the drafter: top-k of noisy target logits at each parent, one path at a time (children after parents)
    tokens[prompt] = rnd.nextInt(VOCAB);  // node 0: sampled by the target last step
    float[][] pathOut = new float[n][];
    for (int i = 0; i < n; i++) {
      pathOut[i] = pathAttention(device, tokens, prompt, i, qTab, kTab, vTab);
      float[] noisy = logits(unembed, pathOut[i]);
      for (int t = 0; t < VOCAB; t++) {
        noisy[t] += (float) (rnd.nextGaussian() * 0.6);  // the drafter's error: more noise, fewer accepted tokens
      }
      int[] ranked = ranked(noisy);
      int child = 0;
      for (int c = i + 1; c < n; c++) {
        if (PARENTS[c] == i) {
          tokens[prompt + c] = ranked[child++];
        }
      }
    }

    // verification: append prompt + drafts, one paged prefill call over the tree mask
    float[] verified = verify(device, tokens, prompt, qTab, kTab, vTab);

    System.out.println();
    System.out.println("token: the drafted token at the node; argmax: the target's next token after it, from the one"
        + " verification call;");
    System.out.println("max |v - p|: that call's output against attention over the prompt and the path's nodes alone");
    System.out.printf("%-5s %-6s %-5s %-7s %-17s %13s  %s%n", "node", "parent", "token", "argmax", "path",
        "max |v - p|", "check");
    boolean allOk = true;
    int[] argmax = new int[n];
    int row = QO_HEADS * HEAD_DIM;
    for (int i = 0; i < n; i++) {
      float[] out = Arrays.copyOfRange(verified, i * row, (i + 1) * row);
      double err = 0;
      boolean ok = true;
      for (int j = 0; j < row; j++) {
        double e = Math.abs(out[j] - pathOut[i][j]);
        err = Math.max(err, e);
        ok &= !Float.isNaN(out[j]) && e <= 1e-2 * (1 + Math.abs(pathOut[i][j]));
      }
      argmax[i] = ranked(logits(unembed, out))[0];
      allOk &= ok;
      System.out.printf("%-5d %-6d %-5d %-7d %-17s %13.2e  %s%n", i, PARENTS[i], tokens[prompt + i], argmax[i],
          path(i), err, ok ? "ok" : "MISMATCH");
    }

    // greedy acceptance: follow the child whose token is the target's argmax at its parent
    List<Integer> accepted = new ArrayList<>();
    int cur = 0;
    while (true) {
      int next = -1;
      for (int c = cur + 1; c < n; c++) {
        if (PARENTS[c] == cur && tokens[prompt + c] == argmax[cur]) {
          next = c;
        }
      }
      if (next < 0) {
        break;
      }
      accepted.add(next);
      cur = next;
    }
    System.out.println();
    System.out.println("greedy walk from node 0: accepted nodes " + accepted + " (" + accepted.size() + " of "
        + "at most 3 draft tokens), bonus token " + argmax[cur] + " from node " + cur);
    System.out.println(allOk ? "every node's output equals attention over its own path (prompt, ancestors, node)"
        : "MISMATCH: a node's output differs from attention over its path");
    return allOk ? 0 : 1;
  }

  /** The draft nodes from the root to node i, e.g. "0>1>4>10". */
  private static String path(int i) {
    StringBuilder s = new StringBuilder(Integer.toString(i));
    for (int a = PARENTS[i]; a >= 0; a = PARENTS[a]) {
      s.insert(0, a + ">");
    }
    return s.toString();
  }

  /** One decode step of node i's query over the linear sequence [prompt, ancestors of i, i]. */
  private static float[] pathAttention(Device device, int[] tokens, int prompt, int i, float[][] qTab,
      float[][] kTab, float[][] vTab) {
    List<Integer> seq = new ArrayList<>();
    for (int a = i; a >= 0; a = PARENTS[a]) {
      seq.add(0, tokens[prompt + a]);
    }
    for (int j = prompt - 1; j >= 0; j--) {
      seq.add(0, tokens[j]);
    }
    int len = seq.size();
    float[] k = new float[len * KV_HEADS * HEAD_DIM];
    float[] v = new float[k.length];
    for (int j = 0; j < len; j++) {
      System.arraycopy(kTab[seq.get(j)], 0, k, j * KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
      System.arraycopy(vTab[seq.get(j)], 0, v, j * KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    }
    try (Tensor qT = Tensor.fromFloats(device, DTYPE, qTab[tokens[prompt + i]], QO_HEADS, HEAD_DIM);
        Tensor kT = Tensor.fromFloats(device, DTYPE, k, len, KV_HEADS, HEAD_DIM);
        Tensor vT = Tensor.fromFloats(device, DTYPE, v, len, KV_HEADS, HEAD_DIM);
        Tensor out = Tensor.empty(device, DTYPE, QO_HEADS, HEAD_DIM)) {
      SingleDecode.run(qT, kT, vT, out, null, KvLayout.NHD);
      return out.toFloatArray();
    }
  }

  /** Appends prompt and drafts to a paged cache and verifies the whole tree in one call; returns out [n, H, D]. */
  private static float[] verify(Device device, int[] tokens, int prompt, float[][] qTab, float[][] kTab,
      float[][] vTab) {
    int n = PARENTS.length;
    int kvLen = prompt + n;
    float[] k = new float[kvLen * KV_HEADS * HEAD_DIM];
    float[] v = new float[k.length];
    for (int j = 0; j < kvLen; j++) {
      System.arraycopy(kTab[tokens[j]], 0, k, j * KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
      System.arraycopy(vTab[tokens[j]], 0, v, j * KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    }
    float[] q = new float[n * QO_HEADS * HEAD_DIM];
    for (int i = 0; i < n; i++) {
      System.arraycopy(qTab[tokens[prompt + i]], 0, q, i * QO_HEADS * HEAD_DIM, QO_HEADS * HEAD_DIM);
    }
    int[] kvLens = {kvLen};
    try (PageTable table = PageTable.contiguous(device, PAGE_SIZE, kvLens);
        PagedKvCache cache = PagedKvCache.allocate(device, DTYPE, KvLayout.NHD, table.maxPageId() + 1, PAGE_SIZE,
            KV_HEADS, HEAD_DIM);
        Tensor kT = Tensor.fromFloats(device, DTYPE, k, kvLen, KV_HEADS, HEAD_DIM);
        Tensor vT = Tensor.fromFloats(device, DTYPE, v, kvLen, KV_HEADS, HEAD_DIM);
        Tensor qT = Tensor.fromFloats(device, DTYPE, q, n, QO_HEADS, HEAD_DIM);
        Tensor out = Tensor.empty(device, DTYPE, n, QO_HEADS, HEAD_DIM);
        BatchPrefillWithPagedKvCache prefill = new BatchPrefillWithPagedKvCache(device)) {
      // in a serving loop the prompt is already cached; here it is appended together with the drafts
      PagedKv.append(kT, vT, PagedKv.batchIndicesAndPositions(new int[] {0, kvLen}, kvLens), cache, table, null);
      // one request with n query rows (the drafts) over prompt + n keys; several requests: concatenate the masks
      prefill.plan(new int[] {0, n}, table, QO_HEADS, KV_HEADS, HEAD_DIM, DTYPE,
          AttentionMask.custom(Masks.tree(prompt, PARENTS)));
      out.fillBytes(0xff);  // poison: anything the kernel fails to write shows as NaN
      prefill.run(qT, cache, out, null);
      return out.toFloatArray();
    }
  }

  private static float[] logits(float[][] unembed, float[] out) {
    float[] l = new float[VOCAB];
    for (int t = 0; t < VOCAB; t++) {
      double s = 0;
      for (int j = 0; j < out.length; j++) {
        s += unembed[t][j] * out[j];
      }
      l[t] = (float) s;
    }
    return l;
  }

  /** Token ids by descending logit. */
  private static int[] ranked(float[] logits) {
    Integer[] ids = new Integer[logits.length];
    for (int t = 0; t < ids.length; t++) {
      ids[t] = t;
    }
    Arrays.sort(ids, (a, b) -> Float.compare(logits[b], logits[a]));
    return Arrays.stream(ids).mapToInt(Integer::intValue).toArray();
  }

  private static float[][] table(Random rnd, int rows, int cols, float scale) {
    float[][] t = new float[rows][cols];
    for (float[] r : t) {
      for (int j = 0; j < cols; j++) {
        r[j] = (float) rnd.nextGaussian() * scale;
      }
    }
    return t;
  }
}
