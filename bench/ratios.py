#!/usr/bin/env python3
"""Prints the ratio table of bench/README.md from Google Benchmark JSON output.

bench_gemm: each "<device>/matmul/<shape>" against "<device>/blas/<shape>";
bench_elementwise: each op against "<device>/memcpy". A ratio is the op's GFLOP/s (GB/s) over
the reference's: 1.00 means moegrad matches the reference. Each benchmark counts with its
fastest repetition over all the files given, the one least disturbed by other work on the
machine.

  build/bench/bench_gemm --benchmark_repetitions=5 --benchmark_out=gemm.json
  python3 bench/ratios.py gemm.json [more runs, elementwise.json ...]
"""
import json
import sys


def fastest_runs(paths):
    runs, programs = {}, {}
    for path in paths:
        data = json.load(open(path))
        program = programs.setdefault(data["context"]["executable"], len(programs))
        for b in data["benchmarks"]:
            if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
                continue
            name = b["run_name"].removesuffix("/real_time").removesuffix("/manual_time")
            if name not in runs or b["real_time"] < runs[name]["real_time"]:
                # Registration order, program by program (random interleaving shuffles a file).
                b["order"] = (program, b["family_index"])
                runs[name] = b
    return runs


def rows(runs):
    for name, run in sorted(runs.items(), key=lambda item: item[1]["order"]):
        device, kind, *shape = name.split("/", 2)
        if kind == "matmul":
            ref = runs.get(f"{device}/blas/{shape[0]}")
            label, key, unit, scale = shape[0], "GFLOP/s", "GFLOP/s", 1.0
        elif kind not in ("blas", "memcpy"):
            ref = runs.get(f"{device}/memcpy")
            label, key, unit, scale = kind, "bytes_per_second", "GB/s", 1e-9
        else:
            continue
        if ref is not None:
            value, ref_value = run[key] * scale, ref[key] * scale
            yield device, label, f"{value:.1f} {unit}", f"{ref_value:.1f} {unit}", value / ref_value


def main():
    print("| device | benchmark | moegrad | reference | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for device, label, value, ref, ratio in rows(fastest_runs(sys.argv[1:])):
        print(f"| {device} | {label} | {value} | {ref} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
