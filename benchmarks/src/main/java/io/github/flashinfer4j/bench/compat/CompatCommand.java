package io.github.flashinfer4j.bench.compat;

import io.github.flashinfer4j.Device;
import io.github.flashinfer4j.Flashinfer4jException;
import io.github.flashinfer4j.UnsupportedConfigurationException;
import io.github.flashinfer4j.bench.Json;
import io.github.flashinfer4j.safetensors.SafetensorsFile;
import io.github.flashinfer4j.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code compat run CASES OUT [--device auto|cpu|cuda|cuda:N] [--case NAME]...}: runs every case of a
 * golden-layout safetensors file (golden/flashinfer-0.2.5, or one written by python-compat/make_cases.py) through
 * flashinfer4j and writes the outputs in the same layout, {@code <case>.o} and {@code <case>.lse}, with a
 * {@code cases} metadata that repeats each case's parameters and adds {@code "status"}: {@code "ok"},
 * {@code "unsupported: <reason>"} (an op or configuration flashinfer4j does not implement: not a failure) or
 * {@code "error: <message>"}. python-compat/compare.py then checks the outputs against the expected ones.
 *
 * <p>Exit code: 0 when every case is ok or unsupported, 1 when a case failed with an error or a file could not
 * be read or written, 2 on a usage error.
 */
public final class CompatCommand {
  static final String USAGE = "usage: java -jar benchmarks.jar compat run CASES.safetensors OUT.safetensors "
      + "[--device auto|cpu|cuda|cuda:N] [--case NAME]...";

  private CompatCommand() {}

  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  public static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length == 0 || !args[0].equals("run")) {
      err.println(USAGE);
      return 2;
    }
    List<String> positional = new ArrayList<>();
    List<String> only = new ArrayList<>();
    String deviceName = "auto";
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      if (a.equals("--device") || a.equals("--case")) {
        if (i + 1 >= args.length) {
          err.println("compat: " + a + " needs a value\n" + USAGE);
          return 2;
        }
        String v = args[++i];
        if (a.equals("--device")) {
          deviceName = v;
        } else {
          only.add(v);
        }
      } else if (a.startsWith("--device=")) {
        deviceName = a.substring("--device=".length());
      } else if (a.startsWith("-")) {
        err.println("compat: unknown option " + a + "\n" + USAGE);
        return 2;
      } else {
        positional.add(a);
      }
    }
    if (positional.size() != 2) {
      err.println("compat: expected CASES and OUT, got " + positional + "\n" + USAGE);
      return 2;
    }
    Device device;
    try {
      device = device(deviceName);
    } catch (IllegalArgumentException e) {
      err.println("compat: " + e.getMessage() + "\n" + USAGE);
      return 2;
    } catch (Flashinfer4jException e) {
      err.println("compat: device " + deviceName + " is not usable: " + e.getMessage());
      return 1;
    }
    return run(Paths.get(positional.get(0)), Paths.get(positional.get(1)), device, only, out, err);
  }

  static Device device(String name) {
    String n = name.toLowerCase(Locale.ROOT);
    if (n.equals("auto")) {
      return Device.best();
    }
    if (n.equals("cpu")) {
      return Device.cpu();
    }
    if (n.equals("cuda")) {
      return Device.cuda(0);
    }
    if (n.startsWith("cuda:")) {
      try {
        return Device.cuda(Integer.parseInt(n.substring(5)));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("bad device " + name);
      }
    }
    throw new IllegalArgumentException("unknown device " + name + " (auto, cpu, cuda or cuda:N)");
  }

  /** Runs the cases of {@code casesFile} (all, or those named in {@code only}) on {@code device}. */
  static int run(Path casesFile, Path outFile, Device device, List<String> only, PrintStream out, PrintStream err) {
    SafetensorsFile file;
    try {
      file = SafetensorsFile.open(casesFile);
    } catch (IOException | IllegalArgumentException e) {
      err.println("compat: cannot read " + casesFile + ": " + e.getMessage());
      return 1;
    }
    try (file) {
      return run(file, casesFile, outFile, device, only, out, err);
    } catch (IOException e) {
      err.println("compat: closing " + casesFile + ": " + e.getMessage());
      return 1;
    }
  }

  private static int run(SafetensorsFile file, Path casesFile, Path outFile, Device device, List<String> only,
      PrintStream out, PrintStream err) {
    Map<String, Object> cases;
    try {
      String json = file.metadata().get("cases");
      if (json == null) {
        err.println("compat: " + casesFile + " has no 'cases' metadata (not a golden-layout file)");
        return 1;
      }
      cases = Json.parseObject(json);
    } catch (IllegalArgumentException e) {
      err.println("compat: cannot read " + casesFile + ": " + e.getMessage());
      return 1;
    }
    for (String name : only) {
      if (!cases.containsKey(name)) {
        err.println("compat: no case " + name + " in " + casesFile + " (cases: " + cases.keySet() + ")");
        return 2;
      }
    }
    String deviceLabel = device + " (" + device.name() + ")";
    out.printf("compat run: %s on %s%n", casesFile, deviceLabel);
    CaseRunner runner = new CaseRunner(device, file);
    SafetensorsWriter tensors = new SafetensorsWriter();
    Map<String, Object> outCases = new LinkedHashMap<>();
    int ok = 0;
    int unsupported = 0;
    int errors = 0;
    for (Map.Entry<String, Object> c : cases.entrySet()) {
      String name = c.getKey();
      if (!only.isEmpty() && !only.contains(name)) {
        continue;
      }
      Map<String, Object> entry = new LinkedHashMap<>();
      String status;
      long t0 = System.nanoTime();
      String op = "?";
      if (!(c.getValue() instanceof Map)) {
        status = "error: the case's metadata is not a JSON object";
      } else {
        @SuppressWarnings("unchecked")
        Map<String, Object> params = (Map<String, Object>) c.getValue();
        entry.putAll(params);
        CaseParams p = new CaseParams(name, params);
        try {
          op = p.op();
          Map<String, CaseRunner.Output> result = runner.run(name, p);
          for (Map.Entry<String, CaseRunner.Output> r : result.entrySet()) {
            CaseRunner.Output o = r.getValue();
            tensors.add(name + "." + r.getKey(), o.dtype(), o.shape(), o.bytes());
          }
          status = "ok";
        } catch (CaseParams.Unsupported | UnsupportedConfigurationException e) {
          status = "unsupported: " + e.getMessage();
        } catch (RuntimeException e) {
          status = "error: " + e.getClass().getSimpleName() + ": " + e.getMessage();
        }
      }
      entry.put("status", status);
      outCases.put(name, entry);
      if (status.equals("ok")) {
        ok++;
      } else if (status.startsWith("unsupported")) {
        unsupported++;
      } else {
        errors++;
      }
      out.printf("  %-40s %-22s %8.1f ms  %s%n", name, op, (System.nanoTime() - t0) / 1e6, status);
    }
    tensors.metadata("cases", JsonWriter.write(outCases));
    String inputSource = file.metadata().getOrDefault("source", "no source");
    tensors.metadata("source", "flashinfer4j compat run on " + deviceLabel + " of " + casesFile.getFileName()
        + " [" + inputSource + "]");
    try {
      Path parent = outFile.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      tensors.write(outFile);
    } catch (IOException | RuntimeException e) {
      err.println("compat: cannot write " + outFile + ": " + e.getMessage());
      return 1;
    }
    out.printf("wrote %s: %d ok, %d unsupported, %d error(s)%n", outFile, ok, unsupported, errors);
    return errors == 0 ? 0 : 1;
  }
}
