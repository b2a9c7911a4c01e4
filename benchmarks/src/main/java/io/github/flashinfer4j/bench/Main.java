package io.github.flashinfer4j.bench;

import java.util.Arrays;

/**
 * Entry point of benchmarks.jar: {@code demo} (default), {@code spec-verify}, {@code bench decode|prefill [options]},
 * {@code compat run}, {@code jit-probe} or {@code jmh [JMH options]}.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    String cmd = args.length == 0 ? "demo" : args[0];
    String[] rest = args.length == 0 ? new String[0] : Arrays.copyOfRange(args, 1, args.length);
    switch (cmd) {
      case "demo":
        System.exit(Demo.run(rest));
        break;
      case "spec-verify":
        System.exit(SpecVerify.run(rest));
        break;
      case "bench":
        if (rest.length > 0 && rest[0].equals("decode")) {
          System.exit(DecodeBenchmark.run(Arrays.copyOfRange(rest, 1, rest.length)));
        }
        if (rest.length > 0 && rest[0].equals("prefill")) {
          System.exit(PrefillBenchmark.run(Arrays.copyOfRange(rest, 1, rest.length)));
        }
        System.err.println("usage: java -jar benchmarks.jar bench decode|prefill [--out DIR] [--quick] [options]");
        System.exit(2);
        break;
      case "compat": System.exit(io.github.flashinfer4j.bench.compat.CompatCommand.run(rest)); break;
      case "jit-probe":
        System.exit(JitProbe.run(rest));
        break;
      case "jmh":
        org.openjdk.jmh.Main.main(rest);
        break;
      default:
        System.err.println("usage: java -jar benchmarks.jar [demo [--cpu] | spec-verify [--cpu] | bench decode|prefill [--out DIR] [--quick] | jmh [options]]");
        System.err.println("       java -jar benchmarks.jar compat run CASES OUT [--device auto|cpu|cuda] [--case NAME]...");
        System.err.println("       java -jar benchmarks.jar jit-probe [--op decode|prefill] [--cache-dir DIR] "
            + "[--head-dim D] [--dtype BF16|F16]");
        System.exit(2);
    }
  }
}
