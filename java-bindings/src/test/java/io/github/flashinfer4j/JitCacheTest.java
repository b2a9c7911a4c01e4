package io.github.flashinfer4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JitCacheTest {
  @TempDir Path temp;

  @AfterEach
  void restoreDefault() {
    JitCache.useDefaultDirectory();
  }

  @Test
  void directorySettingStatsAndClear() throws IOException {
    Path dir = temp.resolve("nested").resolve("cache");
    JitCache.setDirectory(dir);
    assertEquals(dir.toAbsolutePath(), JitCache.directory());
    assertEquals(new JitCache.Stats(0, 0), JitCache.stats(), "a missing directory is an empty cache");
    JitCache.clear();  // nothing to clear: no error

    Files.createDirectories(dir);
    Files.write(dir.resolve("decode-bf16-d96-sm_90-v100-0123456789abcdef.cubin"), new byte[100]);
    Files.write(dir.resolve("prefill-f16-d80-sm_90-v100-fedcba9876543210.cubin"), new byte[23]);
    Files.writeString(dir.resolve("notes.txt"), "not a cache file");
    assertEquals(new JitCache.Stats(2, 123), JitCache.stats());

    JitCache.clear();
    assertEquals(new JitCache.Stats(0, 0), JitCache.stats());
    assertTrue(Files.exists(dir.resolve("notes.txt")), "clear removes only cache files");
  }

  @Test
  void defaultDirectoryIsUnderAUserCacheFolder() {
    JitCache.setDirectory(temp);
    JitCache.useDefaultDirectory();
    Path dir = JitCache.directory();
    String env = System.getenv("FLASHINFER4J_CACHE_DIR");
    if (env != null && !env.isEmpty()) {
      assertEquals(Path.of(env), dir);
    } else {
      assertEquals("flashinfer4j", dir.getFileName().toString(), dir.toString());
    }
    // the one null policy (ApiPolicyTest): a typed exception naming the argument, not a NullPointerException
    assertEquals("dir must be non-null, got null",
        assertThrows(InvalidArgumentException.class, () -> JitCache.setDirectory(null)).getMessage());
  }

  @Test
  void compilerAvailabilityIsReportedWithWhatToInstall() {
    boolean available = JitCache.isCompilerAvailable();
    String reason = JitCache.compilerUnavailableReason();
    if (available) {
      assertEquals("", reason);
    } else {
      assertFalse(reason.isEmpty());
      assertTrue(reason.contains("libnvrtc"), reason);
      assertTrue(reason.contains("ahead-of-time kernels still work"), reason);
    }
  }
}
