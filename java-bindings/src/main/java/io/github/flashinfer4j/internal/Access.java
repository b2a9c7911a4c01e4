package io.github.flashinfer4j.internal;

import io.github.flashinfer4j.Tensor;
import io.github.flashinfer4j.attention.PosEncoding;

/**
 * Where the package accessors are found (the JDK's SharedSecrets pattern). Each accessor is installed once, by the
 * static initialiser of the class that implements it ({@link Tensor} for {@link CoreAccess}, {@link PosEncoding}
 * for {@link AttentionAccess}); the first {@code core()} or {@code attention()} initialises that class, so the
 * accessor is there whichever class a program touches first. This package is not exported by the module.
 */
public final class Access {
  private static CoreAccess core;  // guarded by Access.class; set once
  private static AttentionAccess attention;  // guarded by Access.class; set once

  private Access() {}

  /** Called once, from Tensor's static initialiser. */
  public static synchronized void install(CoreAccess access) {
    if (core != null) {
      throw new IllegalStateException("CoreAccess installed twice");
    }
    core = java.util.Objects.requireNonNull(access);
  }

  /** Called once, from PosEncoding's static initialiser. */
  public static synchronized void install(AttentionAccess access) {
    if (attention != null) {
      throw new IllegalStateException("AttentionAccess installed twice");
    }
    attention = java.util.Objects.requireNonNull(access);
  }

  /** The core accessor. */
  public static CoreAccess core() {
    return CoreHolder.ACCESS;
  }

  /** The attention accessor. */
  public static AttentionAccess attention() {
    return AttentionHolder.ACCESS;
  }

  private static synchronized CoreAccess installedCore() {
    return core;
  }

  private static synchronized AttentionAccess installedAttention() {
    return attention;
  }

  private static void initialize(Class<?> c) {
    try {
      Class.forName(c.getName(), true, c.getClassLoader());
    } catch (ClassNotFoundException e) {
      throw new IllegalStateException(e);
    }
  }

  private static final class CoreHolder {
    static final CoreAccess ACCESS;

    static {
      initialize(Tensor.class);
      ACCESS = java.util.Objects.requireNonNull(installedCore(), "CoreAccess");
    }
  }

  private static final class AttentionHolder {
    static final AttentionAccess ACCESS;

    static {
      initialize(PosEncoding.class);
      ACCESS = java.util.Objects.requireNonNull(installedAttention(), "AttentionAccess");
    }
  }
}
