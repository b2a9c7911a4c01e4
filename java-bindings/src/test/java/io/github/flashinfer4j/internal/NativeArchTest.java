package io.github.flashinfer4j.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.Device;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** Choice of the natives jar when several are on the class path: pure logic, no natives, no GPU. */
class NativeArchTest {
  private static final Set<String> ALL = Set.of("sm80", "sm89", "sm90", "sm100");

  private static String pick(String cc, Set<String> present) {
    NativeArch.Choice c = NativeArch.choose(null, null, null, present, () -> cc);
    assertNull(c.error());
    return c.arch();
  }

  @Test
  void computeCapabilityPicksTheNewestBuildNotNewerThanTheDevice() {
    assertEquals("sm80", pick("8.0", ALL));
    assertEquals("sm80", pick("8.6", ALL));
    assertEquals("sm80", pick("8.7", ALL));
    assertEquals("sm89", pick("8.9", ALL));
    assertEquals("sm90", pick("9.0", ALL));
    assertEquals("sm100", pick("10.0", ALL));
    assertEquals("sm100", pick("10.3", ALL));
    assertEquals("sm100", pick("12.0", ALL));
    assertEquals("sm100", pick(" 12.1\n", ALL));
    // only the jars that are present
    assertEquals("sm80", pick("9.0", Set.of("sm80", "sm100")));
    assertEquals("sm89", pick("10.0", Set.of("sm80", "sm89")));
  }

  @Test
  void undecidedLeavesTheChoiceToJavacpp() {
    assertNull(pick("7.5", ALL), "older than every build");
    assertNull(pick("8.6", Set.of("sm89", "sm90")), "every present build is newer");
    assertNull(pick(null, ALL), "no nvidia-smi / no driver / no GPU");
    assertNull(pick("", ALL));
    assertNull(pick("[N/A]", ALL));
    assertNull(pick("9", ALL));
    assertNull(pick("9.0.1", ALL));
    NativeArch.Choice c = NativeArch.choose(null, null, null, Set.of(), () -> "9.0");
    assertNull(c.arch());
    assertNull(c.error());
  }

  @Test
  void oneJarIsUsedWithoutDetection() {
    AtomicInteger calls = new AtomicInteger();
    Supplier<String> detect = () -> {
      calls.incrementAndGet();
      return "8.0";
    };
    NativeArch.Choice c = NativeArch.choose(null, null, null, Set.of("sm90"), detect);
    assertNull(c.arch());
    assertEquals("the only natives jar", c.reason());
    assertEquals(0, calls.get());
  }

  @Test
  void explicitSettingWinsWithoutDetection() {
    Supplier<String> detect = () -> {
      throw new AssertionError("no detection when the arch is set");
    };
    assertEquals("sm89", NativeArch.choose("sm89", "sm80", null, ALL, detect).arch());
    assertEquals("sm80", NativeArch.choose(null, "SM80", null, ALL, detect).arch());
    assertEquals("sm90", NativeArch.choose(" ", " sm90 ", null, ALL, detect).arch());
    assertEquals("sm100", NativeArch.choose(null, null, "-sm100", ALL, detect).arch());
    assertEquals("sm89", NativeArch.choose("sm89", null, "-sm100", ALL, detect).arch());
    assertEquals("sm90", NativeArch.choose("sm90", null, null, Set.of("sm90"), detect).arch());
    assertTrue(NativeArch.choose("sm89", null, null, ALL, detect).reason().contains("flashinfer4j.arch"));
    assertTrue(NativeArch.choose(null, "sm89", null, ALL, detect).reason().contains("FLASHINFER4J_ARCH"));
  }

  @Test
  void javacppExtensionOfOtherLibrariesIsNotLeftToJavacpp() {
    assertEquals("sm90", NativeArch.choose(null, null, "-gpu", ALL, () -> "9.0").arch());
    assertEquals("sm100", NativeArch.choose(null, null, "-gpu", ALL, () -> null).arch());
    assertEquals("sm90", NativeArch.choose(null, null, "-gpu", Set.of("sm80", "sm90"), () -> "7.5").arch());
    assertEquals("sm89", NativeArch.choose(null, null, "-gpu", Set.of("sm89"), () -> "9.0").arch());
    assertNull(NativeArch.choose(null, null, "-gpu", Set.of(), () -> "9.0").arch());
  }

  @Test
  void badOrMissingExplicitArchIsAnError() {
    NativeArch.Choice bad = NativeArch.choose("sm75", null, null, ALL, () -> "9.0");
    assertNull(bad.arch());
    assertEquals("system property flashinfer4j.arch is \"sm75\"; expected one of sm80, sm89, sm90, sm100",
        bad.error());
    NativeArch.Choice missing = NativeArch.choose(null, "sm89", null, Set.of("sm100", "sm90"), () -> "8.9");
    assertEquals("environment variable FLASHINFER4J_ARCH asks for sm89, but its natives jar is not on the class "
        + "path (found: sm90, sm100)", missing.error());
  }

  @Test
  void nvidiaSmiQueriesTheDeviceCudaSeesFirst() {
    List<String> base = List.of("nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader");
    assertEquals(base, NativeArch.nvidiaSmiCommand(null));
    assertEquals(List.of("nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader", "-i", "2"),
        NativeArch.nvidiaSmiCommand("2,0"));
    assertEquals("GPU-8a2c", NativeArch.nvidiaSmiCommand("GPU-8a2c,GPU-77").get(4));
    assertEquals(base, NativeArch.nvidiaSmiCommand("MIG-5c1e"));
    assertNull(NativeArch.nvidiaSmiCommand(""), "no visible device");
    assertNull(NativeArch.nvidiaSmiCommand("-1"));
  }

  @Test
  void parsesComputeCapability() {
    assertEquals(90, NativeArch.parseComputeCapability("9.0"));
    assertEquals(86, NativeArch.parseComputeCapability("8.6"));
    assertEquals(100, NativeArch.parseComputeCapability("10.0"));
    assertEquals(121, NativeArch.parseComputeCapability("12.1"));
    assertNull(NativeArch.parseComputeCapability("x.0"));
    assertNull(NativeArch.parseComputeCapability(".5"));
    assertNull(NativeArch.parseComputeCapability("9."));
  }

  @Test
  void loadedClassifierIsReported() {
    assertTrue(Device.nativeClassifier().matches("linux-x86_64-sm(80|89|90|100)"), Device.nativeClassifier());
  }
}
