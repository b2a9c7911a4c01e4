package io.github.flashinfer4j.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Which natives jar to load when several classifier jars are on the class path (the flashinfer4j-platform
 * artifact). JavaCPP alone would take the last extension of the preset's list that it finds (-sm100), whatever the
 * GPU; this picks the build that runs on the GPU: an explicit setting first, else the newest build whose
 * architecture is not newer than the device's compute capability, read with nvidia-smi (no CUDA natives needed).
 * When nothing can be decided the choice is left to JavaCPP, as with a single jar. Everything but
 * {@link #detectComputeCapability()} is a pure function.
 */
final class NativeArch {
  /** The architectures that natives jars are built for, oldest first; the classifier is platform + "-" + arch. */
  static final List<String> ARCHS = List.of("sm80", "sm89", "sm90", "sm100");
  static final String PROPERTY = "flashinfer4j.arch";
  static final String ENV = "FLASHINFER4J_ARCH";
  private static final long DETECT_TIMEOUT_MS = 3000;

  private NativeArch() {}

  /**
   * A decision: {@code arch} to load (null: let JavaCPP pick, as with one jar), why, or {@code error} when an
   * explicit setting cannot be honoured.
   */
  record Choice(String arch, String reason, String error) {
    static Choice of(String arch, String reason) {
      return new Choice(arch, reason, null);
    }

    static Choice failure(String error) {
      return new Choice(null, null, error);
    }
  }

  /**
   * Decides which of the {@code present} architectures to load.
   *
   * @param property the system property {@value #PROPERTY} (or null)
   * @param env the environment variable {@value #ENV} (or null); the property wins over it
   * @param javacppExtension JavaCPP's platform.extension (from -Dorg.bytedeco.javacpp.platform.extension, or
   *     null): honoured after the two above when it ends with one of ours ("-sm90"); when it names another
   *     library's ("-gpu"), JavaCPP would find none of our jars, so the newest present is taken where detection
   *     decides nothing
   * @param present the architectures whose natives are on the class path
   * @param detect returns the first visible GPU's compute capability as nvidia-smi prints it ("9.0"), or null;
   *     called only when there is a choice to make
   */
  static Choice choose(String property, String env, String javacppExtension, Collection<String> present,
      Supplier<String> detect) {
    String source = null;
    String value = null;
    if (property != null && !property.isBlank()) {
      source = "system property " + PROPERTY;
      value = property;
    } else if (env != null && !env.isBlank()) {
      source = "environment variable " + ENV;
      value = env;
    } else if (javacppExtension != null) {
      for (String arch : ARCHS) {
        if (javacppExtension.trim().endsWith("-" + arch)) {
          source = "org.bytedeco.javacpp.platform.extension";
          value = arch;
        }
      }
    }
    if (value != null) {
      String arch = value.trim().toLowerCase(Locale.ROOT);
      if (!ARCHS.contains(arch)) {
        return Choice.failure(source + " is \"" + value + "\"; expected one of " + String.join(", ", ARCHS));
      }
      if (!present.contains(arch)) {
        return Choice.failure(source + " asks for " + arch + ", but its natives jar is not on the class path (found: "
            + (present.isEmpty() ? "none" : String.join(", ", sorted(present))) + ")");
      }
      return Choice.of(arch, "set by " + source);
    }
    // JavaCPP looks only for the extensions its property names: one of another library ("-gpu") would find none
    // of our jars, so then the choice cannot be left to it.
    String foreign = javacppExtension == null || javacppExtension.isBlank() ? null : javacppExtension.trim();
    String newest = null;
    for (String arch : ARCHS) {
      if (present.contains(arch)) {
        newest = arch;
      }
    }
    String reason;
    if (present.size() <= 1) {
      reason = present.isEmpty() ? "no natives jar found" : "the only natives jar";
    } else {
      String cc = detect.get();
      Integer ccTimes10 = parseComputeCapability(cc);
      String arch = ccTimes10 == null ? null : newestAtMost(ccTimes10, present);
      if (arch != null) {
        return Choice.of(arch, "for device compute capability " + cc.trim());
      }
      reason = ccTimes10 == null ? "no GPU compute capability detected"
          : "no natives jar for compute capability " + cc.trim() + " among " + sorted(present);
    }
    if (foreign != null && newest != null) {
      return Choice.of(newest, reason + "; the newest, as org.bytedeco.javacpp.platform.extension=" + foreign
          + " names none of ours");
    }
    return Choice.of(null, reason);
  }

  /** "9.0" -> 90, "8.6" -> 86, "10.0" -> 100, "12.1" -> 121; null for anything else (blank, "[N/A]", errors). */
  static Integer parseComputeCapability(String s) {
    if (s == null) {
      return null;
    }
    String t = s.trim();
    int dot = t.indexOf('.');
    if (dot <= 0 || dot != t.lastIndexOf('.') || dot == t.length() - 1) {
      return null;
    }
    try {
      int major = Integer.parseInt(t.substring(0, dot));
      int minor = Integer.parseInt(t.substring(dot + 1));
      if (major <= 0 || minor < 0 || minor > 9) {
        return null;
      }
      return major * 10 + minor;
    } catch (NumberFormatException e) {
      return null;
    }
  }

  /** The number of an arch: "sm89" -> 89. */
  static int number(String arch) {
    return Integer.parseInt(arch.substring(2));
  }

  /**
   * The newest of {@code present} that runs on compute capability {@code ccTimes10}: sm100 for 10.x and above,
   * sm90 for 9.x, sm89 for 8.9, sm80 for 8.0-8.8 (when present); null when all are newer than the device.
   */
  static String newestAtMost(int ccTimes10, Collection<String> present) {
    String best = null;
    for (String arch : ARCHS) {
      if (present.contains(arch) && number(arch) <= ccTimes10) {
        best = arch;
      }
    }
    return best;
  }

  /**
   * The nvidia-smi command for the device CUDA uses first: {@code -i} with the first entry of
   * CUDA_VISIBLE_DEVICES when it is an index or a GPU UUID (MIG entries: the first GPU); null when that variable
   * hides every device ("" or starting with "-1").
   */
  static List<String> nvidiaSmiCommand(String cudaVisibleDevices) {
    List<String> cmd = new ArrayList<>(List.of("nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"));
    if (cudaVisibleDevices == null) {
      return cmd;
    }
    String first = cudaVisibleDevices.split(",", -1)[0].trim();
    if (first.isEmpty() || first.startsWith("-")) {
      return null;
    }
    if (first.chars().allMatch(Character::isDigit) || first.startsWith("GPU-")) {
      cmd.add("-i");
      cmd.add(first);
    }
    return cmd;
  }

  /** The first line that nvidia-smi prints, or null when it is missing, fails or takes longer than 3 s. */
  static String detectComputeCapability() {
    List<String> cmd = nvidiaSmiCommand(System.getenv("CUDA_VISIBLE_DEVICES"));
    if (cmd == null) {
      return null;
    }
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    } catch (IOException | RuntimeException e) {
      return null;  // no nvidia-smi: no driver, or not on PATH
    }
    try (InputStream in = p.getInputStream()) {
      if (!p.waitFor(DETECT_TIMEOUT_MS, TimeUnit.MILLISECONDS) || p.exitValue() != 0) {
        return null;
      }
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      in.transferTo(out);
      String text = out.toString(StandardCharsets.UTF_8).strip();
      int eol = text.indexOf('\n');
      return eol < 0 ? text : text.substring(0, eol).strip();
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    } finally {
      p.destroyForcibly();
    }
  }

  private static List<String> sorted(Collection<String> archs) {
    List<String> out = new ArrayList<>();
    for (String a : ARCHS) {
      if (archs.contains(a)) {
        out.add(a);
      }
    }
    return out;
  }
}
