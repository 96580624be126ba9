#!/usr/bin/env python3
"""Assembles scripts/gpu-check.sh's JSON report from its logs (stdlib only).

    gpu_report.py [--quiet]              the report of one gpu-check.sh run
    gpu_report.py --merge OUT IN...      one report from the reports of a run split over calls
                                         (gpu-check.sh --only), all of one commit

Reads its inputs from the environment gpu-check.sh sets: GPU_QUERY, NVCC_VERSION, ARCH, LOGS,
REPORT, SANITIZER, GIT_COMMIT, GIT_DIRTY, PHASES (those of gpu-check.sh --only that ran),
ALL_TESTS (0: the whole suite was not run, as with a bundle). Exits 1 when a test failed, a
CUDA test was skipped (the GPU was not usable) or a sanitizer found errors or did not finish.
"""
import datetime
import glob
import json
import os
import platform
import re
import sys
import xml.etree.ElementTree as ET

LOGS = os.environ.get("LOGS", "")
ALL_PHASES = ("tests", "sanitizer", "kernels", "train", "reference", "profile")


def log_path(name):
    return os.path.join(LOGS, name)


def ctest_results(junit_name):
    """Counts from ctest's --output-junit file; None when ctest did not write one."""
    path = log_path(junit_name)
    if not os.path.exists(path):
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0, "failed_tests": [], "failures": {}}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None  # written only in part
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
            suite = case.get("classname")
            name = case.get("name")
            full = "%s.%s" % (suite, name) if suite and suite != name else name
            counts["failed_tests"].append(full)
            # What the test said: gtest's assertion messages, or the output ctest kept.
            said = []
            for tag in ("failure", "error", "system-out"):
                for node in case.iter(tag):
                    said += [node.get("message") or "", node.text or ""]
            kept = [t for i, t in enumerate(said) if t.strip() and t not in said[:i]]
            counts["failures"][full] = "\n".join(kept)[-3000:]
        elif case.find("skipped") is not None or case.get("status") in ("notrun", "disabled"):
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    counts["total"] = counts["passed"] + counts["failed"] + counts["skipped"]
    return counts


def sanitizer_log(log, tool, binary):
    text = open(log_path(log), errors="replace").read() if os.path.exists(log_path(log)) else ""
    # memcheck ends with "ERROR SUMMARY: N errors", racecheck with
    # "RACECHECK SUMMARY: H hazards displayed (N errors, W warnings)".
    m = re.search(r"ERROR SUMMARY: (\d+) error", text) or \
        re.search(r"RACECHECK SUMMARY: \d+ hazards? displayed \((\d+) error", text)
    result = {"tool": tool, "binary": binary, "errors": int(m.group(1)) if m else None}
    if m is None:
        result["note"] = "no ERROR SUMMARY line: %s did not finish (see %s)" % (tool, log)
    if result["errors"] != 0:
        # The first findings, for a session whose logs did not come back.
        result["excerpt"] = "\n".join(
            line for line in text.splitlines() if line.startswith("========="))[:4000]
    return result


def sanitizer_results():
    if not os.environ.get("SANITIZER"):
        return {"ran": False, "reason": "compute-sanitizer not found"}
    result = {"ran": True}
    result.update(sanitizer_log("memcheck.log", "memcheck", "tests/test_cuda"))
    result["training"] = [
        sanitizer_log("train-%s.log" % tool, tool, "moegrad bench --config tiny.cfg (1 step)")
        for tool in ("memcheck", "racecheck")]
    result["grouped_gemm"] = sanitizer_log(
        "grouped-racecheck.log", "racecheck", "tests/test_cuda MatmulCudaBf16.GatheredGrouped*")
    # errors: every finding of every run (None when one of them did not finish)
    counts = [result["errors"]] + [r["errors"] for r in result["training"]] + \
        [result["grouped_gemm"]["errors"]]
    result["errors"] = None if None in counts else sum(counts)
    return result


def training_benchmarks():
    """moegrad bench --config lines: tokens/s, achieved GFLOP/s, GEMM rate and ratio."""
    out = {}
    for path in sorted(glob.glob(log_path("train-bench-*.log"))):
        name = os.path.basename(path)[len("train-bench-"):-len(".log")]
        text = open(path, errors="replace").read()
        def number(pattern):
            m = re.search(pattern, text)
            return float(m.group(1)) if m else None
        out[name] = {
            "tokens_per_s": number(r"tokens_per_s=([0-9.eE+-]+)"),
            "achieved_gflops": number(r"achieved: ([0-9.eE+-]+) GFLOP/s"),
            "gemm_gflops": number(r"GEMM rate of [^,]*, same run: ([0-9.eE+-]+)"),
            "ratio_to_gemm": number(r"ratio to GEMM: ([0-9.eE+-]+)"),
            "precision": (re.search(r"(\w+) GEMM rate of", text) or [None, None])[1],
            "peak_memory_gib": number(r"peak memory: ([0-9.eE+-]+) GiB"),
            "inference_peak_memory_gib":
                number(r"inference peak memory \(one micro-batch, no gradients\): ([0-9.eE+-]+) GiB"),
            "training_over_inference_peak": number(r"training peak / inference peak: ([0-9.eE+-]+)"),
            "timed_steps_cuda_mallocs": number(r"over the timed steps: (\d+) cudaMalloc calls"),
            "timed_steps_cache_releases": number(r"cudaMalloc calls, (\d+) cache releases"),
            "timed_steps_host_waits": number(r"cache releases, (\d+) host waits"),
        }
    return out


def profile_text(name):
    """A `moegrad profile` output kept whole (a few kB), or None when it did not run."""
    path = log_path(name)
    return open(path, errors="replace").read() if os.path.exists(path) else None


def benchmark_results():
    out = {}
    for name in ("bench_gemm", "bench_elementwise", "bench_attention", "bench_host"):
        path = log_path(name + ".json")
        if not os.path.exists(path):
            out[name] = None  # not built
            continue
        with open(path, errors="replace") as f:
            text = f.read()
        try:
            out[name] = json.loads(text)
        except ValueError as e:
            # A run cut short (a timeout, a throw) leaves its JSON unfinished: keep the rows that
            # ran and the error it printed.
            err = log_path(name + ".err")
            out[name] = {"error": "unreadable benchmark output: %s" % e, "output": text,
                         "stderr": open(err, errors="replace").read()[-2000:]
                         if os.path.exists(err) else None}
    return out


def phases():
    listed = [p for p in os.environ.get("PHASES", ",".join(ALL_PHASES)).split(",") if p]
    unknown = [p for p in listed if p not in ALL_PHASES]
    if unknown:
        sys.exit("gpu_report: unknown phase(s) %s in PHASES" % ", ".join(unknown))
    return listed


def verdict(report):
    """ok: every test of the phases that ran passed (no CUDA test skipped: on a GPU machine that
    means the GPU was not usable) and the sanitizers finished with no finding."""
    ok = True
    if "tests" in report["phases"]:
        tests = report["tests"]
        ran = [t for t in tests.values() if t is None or "passed" in t]
        ok = all(t is not None and t["failed"] == 0 for t in ran)
        cuda = tests.get("cuda")
        ok = ok and cuda is not None and cuda["passed"] > 0 and cuda["skipped"] == 0
    if "sanitizer" in report["phases"]:
        sanitizer = report["sanitizer"]
        ok = ok and (not sanitizer["ran"] or sanitizer["errors"] == 0)
    return ok


def summary(report):
    tests = report.get("tests") or {}
    counts = ", ".join(
        "%s: %d passed, %d failed, %d skipped" % (k, t["passed"], t["failed"], t["skipped"])
        for k, t in tests.items() if t is not None and "passed" in t)
    sanitizer = report.get("sanitizer") or {}
    return "gpu-check: %s; report %s (phases %s; %s; sanitizer errors: %s)" % (
        "OK" if report["ok"] else "FAILED", os.environ.get("REPORT", "-"),
        ",".join(report["phases"]), counts or "no test results",
        sanitizer.get("errors", "not run"))


def report_of_run():
    run = phases()
    devices = []
    for line in os.environ["GPU_QUERY"].splitlines():
        name, _, driver = line.rpartition(",")
        devices.append({"name": name.strip(), "driver_version": driver.strip()})
    report = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "devices": devices,
        "device_name": devices[0]["name"] if devices else None,
        "driver_version": devices[0]["driver_version"] if devices else None,
        "nvcc_version": os.environ["NVCC_VERSION"],
        "cuda_architectures": os.environ["ARCH"],
        "git_commit": os.environ["GIT_COMMIT"],
        "git_dirty": os.environ["GIT_DIRTY"] == "true",
        "phases": run,
    }
    if "tests" in run:
        tests = {"cuda": ctest_results("ctest-cuda.xml")}
        if os.environ.get("ALL_TESTS", "1") != "0":
            tests["all"] = ctest_results("ctest-all.xml")
        else:
            tests["all"] = {"ran": False,
                            "reason": "programs from a gpu-bundle.sh bundle; CI runs the CPU suite"}
        report["tests"] = tests
    if "sanitizer" in run:
        report["sanitizer"] = sanitizer_results()
    if "kernels" in run:
        report["benchmarks"] = benchmark_results()
    if "profile" in run:
        report["profile_medium_bf16"] = profile_text("profile-medium-bf16.txt")
    if "train" in run or "reference" in run:
        report["training_benchmarks"] = training_benchmarks()
    report["ok"] = verdict(report)
    return report


def merged(paths):
    """The reports of calls that each ran some phases, as one: a phase's section comes from the
    report that ran it (the last one, if several did), the training benchmarks from all."""
    reports = [json.load(open(p)) for p in paths]
    commits = {r["git_commit"] for r in reports}
    if len(commits) != 1:
        sys.exit("gpu_report --merge: the reports are of different commits: %s" % ", ".join(
            sorted(commits)))
    out = dict(reports[0])
    out["phases"] = []
    out["merged_from"] = [{"generated_at": r["generated_at"], "host": r["host"],
                           "phases": r.get("phases", list(ALL_PHASES))} for r in reports]
    out["training_benchmarks"] = {}
    section = {"tests": "tests", "sanitizer": "sanitizer", "kernels": "benchmarks",
               "profile": "profile_medium_bf16"}
    for phase, key in section.items():
        out.pop(key, None)
    for r in reports:
        ran = r.get("phases", list(ALL_PHASES))
        out["phases"] += [p for p in ran if p not in out["phases"]]
        for phase, key in section.items():
            if phase in ran:
                out[key] = r.get(key)
        out["training_benchmarks"].update(r.get("training_benchmarks") or {})
        out["git_dirty"] = out["git_dirty"] or r["git_dirty"]
    out["phases"] = [p for p in ALL_PHASES if p in out["phases"]]
    out["ok"] = verdict(out)
    return out


def main(argv):
    if argv[:1] == ["--merge"]:
        if len(argv) < 3:
            sys.exit("usage: gpu_report.py --merge OUT IN...")
        report = merged(argv[2:])
        os.environ["REPORT"] = argv[1]
    elif argv in ([], ["--quiet"]):
        report = report_of_run()
    else:
        sys.exit("usage: gpu_report.py [--quiet] | --merge OUT IN...")
    # Written whole or not at all: gpu-check.sh rewrites it while a run may be stopped.
    path = os.environ["REPORT"]
    with open(path + ".part", "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(path + ".part", path)
    if argv != ["--quiet"]:
        print(summary(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
