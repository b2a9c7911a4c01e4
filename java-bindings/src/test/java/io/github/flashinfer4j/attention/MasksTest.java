package io.github.flashinfer4j.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.InvalidArgumentException;
import io.github.flashinfer4j.safetensors.SafetensorsFile;
import io.github.flashinfer4j.testing.GoldenCases;
import java.io.IOException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Packing of custom masks (little-endian bits, per-request byte padding) and the draft-tree mask helper. */
class MasksTest {
  private static boolean[] bools(int... bits) {
    boolean[] b = new boolean[bits.length];
    for (int i = 0; i < bits.length; i++) {
      b[i] = bits[i] != 0;
    }
    return b;
  }

  /** The packing written out by hand, bit by bit. */
  private static byte[] manualPack(boolean[] mask, int from, int to) {
    byte[] out = new byte[(to - from + 7) / 8];
    for (int o = 0; o < to - from; o++) {
      if (mask[from + o]) {
        out[o / 8] |= (byte) (1 << (o % 8));
      }
    }
    return out;
  }

  @Test
  void packbitsIsLittleEndianAndZeroPadded() {
    assertArrayEquals(new byte[0], Masks.packbits(new boolean[0]));
    assertArrayEquals(new byte[] {0x01}, Masks.packbits(bools(1)));
    assertArrayEquals(new byte[] {(byte) 0x80}, Masks.packbits(bools(0, 0, 0, 0, 0, 0, 0, 1)));
    // bits 1, 2, 4, 7 of the first byte: 0b1001_0110
    assertArrayEquals(new byte[] {(byte) 0x96}, Masks.packbits(bools(0, 1, 1, 0, 1, 0, 0, 1)));
    // element 8 starts the second byte; its unused high bits stay 0
    assertArrayEquals(new byte[] {0x01, 0x01}, Masks.packbits(bools(1, 0, 0, 0, 0, 0, 0, 0, 1)));
    assertArrayEquals(new byte[] {(byte) 0xff, 0x03}, Masks.packbits(bools(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)));
    Random rnd = new Random(3);
    for (int n = 0; n < 100; n++) {
      boolean[] m = new boolean[n];
      for (int i = 0; i < n; i++) {
        m[i] = rnd.nextBoolean();
      }
      assertArrayEquals(manualPack(m, 0, n), Masks.packbits(m), "n = " + n);
    }
  }

  @Test
  void segmentPackbitsPadsEachSegment() {
    Random rnd = new Random(5);
    int[] indptr = {0, 3, 3, 12, 20, 21};
    boolean[] m = new boolean[21];
    for (int i = 0; i < m.length; i++) {
      m[i] = rnd.nextBoolean();
    }
    PackedMask p = Masks.segmentPackbits(m, indptr);
    assertArrayEquals(new int[] {0, 1, 1, 3, 4, 5}, p.indptr());
    assertEquals(5, p.batchSize());
    byte[] expected = new byte[5];
    int at = 0;
    for (int b = 0; b < 5; b++) {
      byte[] seg = manualPack(m, indptr[b], indptr[b + 1]);
      System.arraycopy(seg, 0, expected, at, seg.length);
      at += seg.length;
    }
    assertArrayEquals(expected, p.bits());
    for (int b = 0; b < 5; b++) {
      for (int o = 0; o < indptr[b + 1] - indptr[b]; o++) {
        assertEquals(m[indptr[b] + o], p.get(b, o), "segment " + b + " element " + o);
      }
    }
    assertEquals(p, PackedMask.of(p.bits(), p.indptr()));
    PackedMask empty = Masks.segmentPackbits(new boolean[0], new int[] {0});
    assertEquals(0, empty.batchSize());
    assertEquals(0, empty.bits().length);
  }

  @Test
  void goldenTreeMaskPacksPerRequest() throws IOException {
    String name = "prefill_paged_treemask_bf16_d128";
    boolean[] mask;
    int[] qo;
    int[] kvIndptr;
    int[] last;
    try (SafetensorsFile f = GoldenCases.open("prefill")) {
      mask = GoldenPrefillTest.unpackedMask(f, name);
      qo = GoldenCases.ints(f, name, "qo_indptr");
      kvIndptr = GoldenCases.ints(f, name, "kv_indptr");
      last = GoldenCases.ints(f, name, "kv_last_page_len");
    }
    int pageSize = 16;
    int batch = qo.length - 1;
    int[] elements = new int[batch + 1];
    int[] bytes = new int[batch + 1];
    for (int b = 0; b < batch; b++) {
      int kv = pageSize * (kvIndptr[b + 1] - kvIndptr[b] - 1) + last[b];
      int n = (qo[b + 1] - qo[b]) * kv;
      elements[b + 1] = elements[b] + n;
      bytes[b + 1] = bytes[b] + (n + 7) / 8;
    }
    assertEquals(mask.length, elements[batch], "golden mask covers qo x kv of every request");
    PackedMask p = Masks.segmentPackbits(mask, elements);
    // 5 x 60 = 300 bits -> 38 bytes, 9 x 130 = 1170 bits -> 147 bytes
    assertArrayEquals(new int[] {0, 38, 185}, p.indptr());
    assertArrayEquals(bytes, p.indptr());
    byte[] all = p.bits();
    for (int b = 0; b < batch; b++) {
      byte[] seg = manualPack(mask, elements[b], elements[b + 1]);
      for (int i = 0; i < seg.length; i++) {
        assertEquals(seg[i], all[bytes[b] + i], "request " + b + " byte " + i);
      }
    }
    // the one-shot packbits of one request agrees with its segment
    boolean[] first = java.util.Arrays.copyOfRange(mask, 0, elements[1]);
    assertArrayEquals(java.util.Arrays.copyOfRange(all, 0, 38), Masks.packbits(first));
  }

  @Test
  void treeMaskKeepsPrefixAncestorsAndSelf() {
    // 0 <- 1, 0 <- 2, 1 <- 3 after a prefix of 2 tokens
    boolean[] t = Masks.tree(2, new int[] {-1, 0, 0, 1});
    assertArrayEquals(bools(
        1, 1, 1, 0, 0, 0,
        1, 1, 1, 1, 0, 0,
        1, 1, 1, 0, 1, 0,
        1, 1, 1, 1, 0, 1), t);
    // two roots (children of the last committed token), no prefix
    assertArrayEquals(bools(1, 0, 0, 1), Masks.tree(0, new int[] {-1, -1}));
    assertEquals(0, Masks.tree(5, new int[0]).length);
  }

  @Test
  void invalidArguments() {
    assertEquals("indptr[2] must be mask.length = 5, got 4", assertThrows(InvalidArgumentException.class,
        () -> Masks.segmentPackbits(new boolean[5], new int[] {0, 2, 4})).getMessage());
    assertEquals("indptr[0] must be 0, got 1", assertThrows(InvalidArgumentException.class,
        () -> Masks.segmentPackbits(new boolean[5], new int[] {1, 5})).getMessage());
    assertEquals("indptr[2] must be >= indptr[1] = 4 (non-decreasing), got 3", assertThrows(
        InvalidArgumentException.class, () -> Masks.segmentPackbits(new boolean[3], new int[] {0, 4, 3}))
        .getMessage());
    assertEquals("indptr.length must be >= 1 (batch + 1), got 0", assertThrows(InvalidArgumentException.class,
        () -> Masks.segmentPackbits(new boolean[0], new int[0])).getMessage());
    assertEquals("mask must be non-null, got null",
        assertThrows(InvalidArgumentException.class, () -> Masks.packbits(null)).getMessage());
    assertEquals("parents[2] must be in [-1, 2) (parents first), got 2", assertThrows(InvalidArgumentException.class,
        () -> Masks.tree(3, new int[] {-1, 0, 2})).getMessage());
    assertEquals("prefixLen must be >= 0, got -1",
        assertThrows(InvalidArgumentException.class, () -> Masks.tree(-1, new int[0])).getMessage());
    assertEquals("indptr[1] must be <= bits.length = 1, got 2", assertThrows(InvalidArgumentException.class,
        () -> PackedMask.of(new byte[1], new int[] {0, 2})).getMessage());
    assertEquals("indptr[0] must be 0, got 1", assertThrows(InvalidArgumentException.class,
        () -> PackedMask.of(new byte[1], new int[] {1, 1})).getMessage());
    assertEquals("indptr[2] must be >= indptr[1] = 1 (non-decreasing), got 0", assertThrows(
        InvalidArgumentException.class, () -> PackedMask.of(new byte[1], new int[] {0, 1, 0})).getMessage());
    PackedMask p = PackedMask.of(new byte[] {0x05}, new int[] {0, 1});
    assertTrue(p.get(0, 0));
    assertFalse(p.get(0, 1));
    assertTrue(p.get(0, 2));
    assertEquals("element must be in [0, 8), got 8",
        assertThrows(InvalidArgumentException.class, () -> p.get(0, 8)).getMessage());
  }
}
