package io.github.flashinfer4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.flashinfer4j.attention.AppendPositions;
import io.github.flashinfer4j.attention.AttentionMask;
import io.github.flashinfer4j.attention.AttentionOptions;
import io.github.flashinfer4j.attention.BatchDecodeWithPagedKvCache;
import io.github.flashinfer4j.attention.BatchPrefillWithPagedKvCache;
import io.github.flashinfer4j.attention.BatchPrefillWithRaggedKvCache;
import io.github.flashinfer4j.attention.DecodePath;
import io.github.flashinfer4j.attention.DecodePlan;
import io.github.flashinfer4j.attention.DecodePlanOptions;
import io.github.flashinfer4j.attention.KvLayout;
import io.github.flashinfer4j.attention.Masks;
import io.github.flashinfer4j.attention.PackedMask;
import io.github.flashinfer4j.attention.PageTable;
import io.github.flashinfer4j.attention.PagedKvCache;
import io.github.flashinfer4j.attention.PosEncoding;
import io.github.flashinfer4j.attention.PrefillPlan;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Parameter;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The API-wide policies, over every public constructor and method of the exported packages (found by reflection,
 * so a new class joins without being listed here), on the CPU backend:
 * <ul>
 *   <li>Null: a null for a required reference parameter is an {@link InvalidArgumentException} "name must be
 *       non-null, got null" naming that parameter, before anything else is checked (never a NullPointerException).
 *       The parameters that may be null by contract are listed in {@link #NULLABLE}.</li>
 *   <li>Closed handles: after close(), every public method of an AutoCloseable either works without native memory
 *       (accessors of immutable facts: shape, device, ...) or throws IllegalStateException "Class is closed", before
 *       checking its arguments; and the methods that do native work ({@link #MUST_REFUSE}) do throw.</li>
 * </ul>
 */
class ApiPolicyTest {
  /** Parameters that may be null by contract ("Class.method.parameter"; "<init>" for constructors). */
  private static final Set<String> NULLABLE = Set.of(
      // optional outputs and the default stream
      "*.lse", "*.stream",
      // wrappers allocate their own workspace when none is given
      "BatchDecodeWithPagedKvCache.forCudaGraph.workspace", "BatchPrefillWithRaggedKvCache.<init>.workspace",
      "BatchPrefillWithPagedKvCache.<init>.workspace",
      // equals(null) is false
      "*.equals.o", "*.equals.obj");

  /** Methods of a closed handle that must refuse use ("Class.method"). */
  private static final Set<String> MUST_REFUSE = Set.of(
      "Tensor.address", "Tensor.select", "Tensor.narrow", "Tensor.reshape", "Tensor.fillBytes",
      "Tensor.fillUniform", "Tensor.copyFrom", "Tensor.copyFromBits", "Tensor.toFloatArray", "Tensor.toIntArray",
      "Tensor.toBits", "Tensor.copyTo", "Tensor.to", "Stream.handle", "Stream.synchronize",
      "BatchDecodeWithPagedKvCache.plan", "BatchDecodeWithPagedKvCache.run", "BatchPrefillWithRaggedKvCache.plan",
      "BatchPrefillWithRaggedKvCache.run", "BatchPrefillWithPagedKvCache.plan", "BatchPrefillWithPagedKvCache.run");

  private final Device cpu = Device.cpu();
  private final List<AutoCloseable> resources = new ArrayList<>();
  private final Map<Class<?>, Supplier<Object>> samples = new HashMap<>();

  private <T extends AutoCloseable> T keep(T t) {
    resources.add(t);
    return t;
  }

  @AfterEach
  void closeAll() throws Exception {
    for (int i = resources.size() - 1; i >= 0; i--) {
      resources.get(i).close();
    }
  }

  /** Sample arguments and receivers: fresh for each call, so that closing one does not affect the others. */
  private void samples() {
    samples.put(Device.class, () -> cpu);
    samples.put(DType.class, () -> DType.F16);
    samples.put(Tensor.class, () -> keep(Tensor.zeros(cpu, DType.F16, 2, 4, 8)));
    samples.put(Stream.class, () -> keep(Stream.create(cpu)));
    samples.put(int[].class, () -> new int[] {0, 1});
    samples.put(long[].class, () -> new long[] {2});
    samples.put(float[].class, () -> new float[] {0f});
    samples.put(short[].class, () -> new short[] {0});
    samples.put(byte[].class, () -> new byte[] {1});
    samples.put(boolean[].class, () -> new boolean[] {true});
    samples.put(ByteBuffer.class, () -> ByteBuffer.allocate(8));
    samples.put(String.class, () -> "x");
    samples.put(Runnable.class, () -> (Runnable) () -> { });
    samples.put(Path.class, () -> Paths.get(System.getProperty("java.io.tmpdir")));
    samples.put(KvLayout.class, () -> KvLayout.NHD);
    samples.put(PosEncoding.class, () -> PosEncoding.NONE);
    samples.put(DecodePath.class, () -> DecodePath.AUTO);
    samples.put(AttentionMask.class, AttentionMask::causal);
    samples.put(AttentionOptions.class, AttentionOptions::defaults);
    samples.put(AttentionOptions.Builder.class, AttentionOptions::builder);
    samples.put(DecodePlanOptions.class, DecodePlanOptions::defaults);
    samples.put(DecodePlanOptions.Builder.class, DecodePlanOptions::builder);
    samples.put(KernelConfig.class, () -> KernelConfig.forDecode(cpu, DType.F16, 8, AttentionOptions.defaults(),
        DecodePath.AUTO));
    samples.put(KernelConfig.Builder.class, () -> KernelConfig.decode(cpu, DType.F16, 8));
    samples.put(KernelConfig[].class, () -> new KernelConfig[0]);
    samples.put(PackedMask.class, () -> Masks.segmentPackbits(new boolean[] {true}, new int[] {0, 1}));
    samples.put(AppendPositions.class, () -> new AppendPositions(new int[] {0}, new int[] {0}));
    samples.put(PageTable.class, () -> keep(PageTable.contiguous(cpu, 4, new int[] {3, 1})));
    samples.put(PagedKvCache.class, () -> keep(PagedKvCache.allocate(cpu, DType.F16, KvLayout.NHD, 2, 4, 2, 8)));
    samples.put(BatchDecodeWithPagedKvCache.class, () -> {
      BatchDecodeWithPagedKvCache w = keep(new BatchDecodeWithPagedKvCache(cpu));
      w.plan(keep(PageTable.contiguous(cpu, 4, new int[] {3, 1})), 4, 2, 8, 4, DType.F16);
      return w;
    });
    samples.put(BatchPrefillWithRaggedKvCache.class, () -> {
      BatchPrefillWithRaggedKvCache w = keep(new BatchPrefillWithRaggedKvCache(cpu));
      w.plan(new int[] {0, 1, 2}, new int[] {0, 1, 2}, 4, 2, 8, DType.F16, AttentionMask.causal());
      return w;
    });
    samples.put(BatchPrefillWithPagedKvCache.class, () -> {
      BatchPrefillWithPagedKvCache w = keep(new BatchPrefillWithPagedKvCache(cpu));
      w.plan(new int[] {0, 1, 2}, keep(PageTable.contiguous(cpu, 4, new int[] {3, 1})), 4, 2, 8, DType.F16,
          AttentionMask.causal());
      return w;
    });
    samples.put(DecodePlan.class,
        () -> ((BatchDecodeWithPagedKvCache) samples.get(BatchDecodeWithPagedKvCache.class).get()).latestPlan());
    samples.put(PrefillPlan.class,
        () -> ((BatchPrefillWithRaggedKvCache) samples.get(BatchPrefillWithRaggedKvCache.class).get()).latestPlan());
  }

  /** The public top-level and nested classes of the exported packages. */
  private static List<Class<?>> exportedClasses() throws IOException, URISyntaxException {
    Path location = Paths.get(Tensor.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    // target/classes in a Maven build, the API jar in the GPU bundle
    java.nio.file.FileSystem jar = Files.isDirectory(location) ? null
        : java.nio.file.FileSystems.newFileSystem(location, (ClassLoader) null);
    Path root = jar == null ? location : jar.getPath("/");
    try {
      return exportedClasses(root);
    } finally {
      if (jar != null) {
        jar.close();
      }
    }
  }

  private static List<Class<?>> exportedClasses(Path root) throws IOException {
    List<Class<?>> out = new ArrayList<>();
    for (String pkg : new String[] {"io/github/flashinfer4j", "io/github/flashinfer4j/attention"}) {
      try (java.util.stream.Stream<Path> files = Files.list(root.resolve(pkg))) {
        for (Path f : files.filter(p -> p.toString().endsWith(".class")).sorted().collect(Collectors.toList())) {
          String name = pkg.replace('/', '.') + "." + f.getFileName().toString().replace(".class", "");
          try {
            Class<?> c = Class.forName(name);
            if (Modifier.isPublic(c.getModifiers()) && isPubliclyReachable(c)) {
              out.add(c);
            }
          } catch (ClassNotFoundException e) {
            throw new IllegalStateException(e);
          }
        }
      }
    }
    return out;
  }

  private static boolean isPubliclyReachable(Class<?> c) {
    for (Class<?> x = c; x != null; x = x.getEnclosingClass()) {
      if (!Modifier.isPublic(x.getModifiers()) || x.isAnonymousClass() || x.isLocalClass()) {
        return false;
      }
    }
    return true;
  }

  private static String name(Executable e) {
    return e.getDeclaringClass().getSimpleName() + "." + (e instanceof Constructor ? "<init>" : e.getName());
  }

  private static boolean nullable(Executable e, Parameter p) {
    return NULLABLE.contains(name(e) + "." + p.getName()) || NULLABLE.contains("*." + p.getName())
        || NULLABLE.contains("*." + e.getName() + "." + p.getName());
  }

  private static List<Executable> entryPoints(Class<?> c) {
    List<Executable> out = new ArrayList<>();
    for (Constructor<?> k : c.getConstructors()) {
      out.add(k);
    }
    for (Method m : c.getMethods()) {
      if (m.getDeclaringClass() == c && !m.isSynthetic() && !m.isBridge()) {
        out.add(m);
      }
    }
    out.sort((a, b) -> a.toString().compareTo(b.toString()));
    return out;
  }

  /** Arguments for {@code e} from the samples, or null when a parameter type has none. */
  private Object[] arguments(Executable e) {
    Class<?>[] types = e.getParameterTypes();
    Object[] args = new Object[types.length];
    for (int i = 0; i < types.length; i++) {
      Class<?> t = types[i];
      if (t == int.class) {
        args[i] = 1;
      } else if (t == long.class) {
        args[i] = 1L;
      } else if (t == float.class) {
        args[i] = 1f;
      } else if (t == double.class) {
        args[i] = 1.0;
      } else if (t == boolean.class) {
        args[i] = true;
      } else if (samples.containsKey(t)) {
        args[i] = samples.get(t).get();
      } else {
        return null;
      }
    }
    return args;
  }

  private static Throwable invoke(Executable e, Object receiver, Object[] args) {
    try {
      if (e instanceof Constructor) {
        Object made = ((Constructor<?>) e).newInstance(args);
        if (made instanceof AutoCloseable) {
          ((AutoCloseable) made).close();
        }
      } else {
        Object result = ((Method) e).invoke(receiver, args);
        if (result instanceof AutoCloseable && !(result instanceof Tensor && receiver instanceof PagedKvCache)
            && !(result instanceof PrefillPlan)) {
          ((AutoCloseable) result).close();
        }
      }
      return null;
    } catch (InvocationTargetException ex) {
      return ex.getCause();
    } catch (ReflectiveOperationException | RuntimeException ex) {
      return ex;
    } catch (Exception ex) {
      return ex;
    }
  }

  @Test
  void everyRequiredReferenceParameterRejectsNullByName() throws Exception {
    samples();
    List<String> violations = new ArrayList<>();
    int checked = 0;
    int skipped = 0;
    for (Class<?> c : exportedClasses()) {
      for (Executable e : entryPoints(c)) {
        Parameter[] params = e.getParameters();
        for (int i = 0; i < params.length; i++) {
          Parameter p = params[i];
          if (p.getType().isPrimitive() || nullable(e, p) || Throwable.class.isAssignableFrom(c)
              || (c.isEnum() && e.getName().equals("valueOf"))) {
            // exceptions take a null message as Java's do; an enum's valueOf is the JDK's
            continue;
          }
          assertTrue(p.isNamePresent(), "compiled with -parameters: " + e);
          boolean isStatic = e instanceof Constructor || Modifier.isStatic(e.getModifiers());
          Object receiver = isStatic ? null : samples.containsKey(c) ? samples.get(c).get() : null;
          Object[] args = arguments(e);
          if (args == null || (!isStatic && receiver == null)) {
            skipped++;
            continue;
          }
          args[i] = null;
          Throwable t = invoke(e, receiver, args);
          String expected = p.getName() + " must be non-null, got null";
          if (!(t instanceof InvalidArgumentException) || !expected.equals(t.getMessage())) {
            violations.add(e + " with " + p.getName() + " = null: expected InvalidArgumentException \"" + expected
                + "\", got " + t);
          }
          checked++;
        }
      }
    }
    System.out.printf("ApiPolicyTest null policy: %d parameters checked, %d skipped (no sample), %d violations%n",
        checked, skipped, violations.size());
    assertTrue(checked > 100, "checked " + checked);
    assertTrue(violations.isEmpty(), String.join("\n", violations));
  }

  @Test
  void closedHandlesRefuseUseWithOneMessage() throws Exception {
    samples();
    List<String> violations = new ArrayList<>();
    int refused = 0;
    for (Class<?> c : exportedClasses()) {
      if (!AutoCloseable.class.isAssignableFrom(c) || !samples.containsKey(c)) {
        continue;
      }
      String expected = c.getSimpleName() + " is closed";
      boolean sawRefusal = false;
      for (Executable e : entryPoints(c)) {
        if (e instanceof Constructor || Modifier.isStatic(e.getModifiers()) || e.getName().equals("close")) {
          continue;
        }
        AutoCloseable receiver = (AutoCloseable) samples.get(c).get();
        Object[] args = arguments(e);
        if (args == null) {
          continue;
        }
        receiver.close();
        Throwable t = invoke(e, receiver, args);
        boolean mustRefuse = MUST_REFUSE.contains(name(e));
        if (t == null && !mustRefuse) {
          continue;  // an accessor of immutable facts
        }
        if (!(t instanceof IllegalStateException) || !t.getMessage().startsWith(expected)) {
          violations.add(e + " on a closed " + c.getSimpleName() + ": expected IllegalStateException \"" + expected
              + "...\", got " + (t == null ? "a normal return" : t.toString()));
        } else {
          refused++;
          sawRefusal = true;
        }
      }
      if (!sawRefusal && MUST_REFUSE.stream().anyMatch(m -> m.startsWith(c.getSimpleName() + "."))) {
        violations.add(c.getSimpleName() + ": no method refused use after close");
      }
    }
    System.out.printf("ApiPolicyTest closed-handle policy: %d refusals checked, %d violations%n", refused,
        violations.size());
    assertTrue(refused > 30, "refusals " + refused);
    assertTrue(violations.isEmpty(), String.join("\n", violations));
  }
}
