#!/usr/bin/env python3
# ghostnet-d — turns deploy/bench.sh's results into docs/PERFORMANCE.md's generated section.
#
#   bench_table.py STEPS.jsonl DATA.txt ALLREDUCE.txt EXCHANGE.txt [EXISTING.md] > PERFORMANCE.md
#   bench_table.py micro MICRO.jsonl EXISTING.md > PERFORMANCE.md
#
# STEPS.jsonl holds one `bench train|infer --json` object per line (plus "kernel_mode"); the text
# files hold the reports of `bench data`, `bench allreduce` and a 2-rank `bench train`. When EXISTING.md is given and
# has the markers below, only the text between them is replaced, so notes around it survive. The
# `micro` form writes the micro-batch table (one `bench train --json` object per line, plus
# "label") between its own markers, appended to EXISTING.md when they are missing.
import datetime
import json
import os
import platform
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
MICRO_BEGIN, MICRO_END = "<!-- bench:micro:begin -->", "<!-- bench:micro:end -->"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def generated(steps, data_lines, allreduce_lines, exchange_lines):
    out = [BEGIN, ""]
    out.append(f"Measured {datetime.date.today().isoformat()} on {cpu_model()} "
               f"({os.cpu_count()} logical CPUs), fp32, by `make bench`. "
               "Kernels `env` = the environment's OPENBLAS_CORETYPE, `auto` = the program's own choice. "
               "% peak = effective GFLOP/s (train 3 × 2 × MACs, infer 2 × MACs per image) over the best sgemm "
               "2048³ rate measured in the same run; % adjacent = the median over steps of the step's rate over "
               "an sgemm sample taken just before it (same machine load).")
    out.append("")
    out.append("| kernels | OpenBLAS kernel | packed kernels | bench | arch | batch | size | threads | step ms | images/s "
               "| GFLOP/s | sgemm peak | % peak | % adjacent | peak RSS GB | allocs/step | large allocs after step 1 |")
    out.append("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in steps:
        out.append(
            f"| {r['kernel_mode']} | {r['openblas_kernel']} | {r.get('packed_kernel', 'none')} | {r['benchmark']} | {r['architecture']} "
            f"| {r['batch_size']} | {r['image_size']} | {r['threads']} | {r['step_seconds'] * 1000:.0f} "
            f"| {r['images_per_second']:.2f} | {r['gflops_per_second']:.1f} | {r['gemm_peak_gflops']:.1f} "
            f"| {r['peak_fraction'] * 100:.1f} | {r['adjacent_peak_fraction'] * 100:.1f} | {r['peak_rss_bytes'] / 1e9:.2f} | {r['allocations_per_step']} "
            f"| {r['large_allocations_after_first_step']} |")
    out.append("")
    out.append("Time per step by layer kind (ms), ghostnet101 batch 16:")
    out.append("")
    main = [r for r in steps if r["architecture"] == "ghostnet101"]
    if main:
        labels = list(main[0]["breakdown_seconds"].keys())
        out.append("| kernels | bench | " + " | ".join(labels) + " |")
        out.append("|---|---|" + "---:|" * len(labels))
        for r in main:
            cells = " | ".join(f"{r['breakdown_seconds'][k] * 1000:.0f}" for k in labels)
            out.append(f"| {r['kernel_mode']} | {r['benchmark']} | {cells} |")
    out.append("")
    out.append("`bench data` (decode + augment of 500×375 JPEGs, 2 threads):")
    out.append("")
    out += ["    " + line for line in data_lines if line.strip()]
    out.append("")
    out.append("`bench allreduce` (`mpirun -np 2` on one host, shared memory: `btl self,vader,tcp`):")
    out.append("")
    out += ["    " + line for line in allreduce_lines if line.strip()]
    out.append("")
    out.append("2-rank `bench train` with the real gradient exchange (`mpirun -np 2`, ghostnet50, batch 8, "
               "128×128, 1 thread per rank); the last line is what the exchange adds to a step:")
    out.append("")
    out += ["    " + line for line in exchange_lines if line.strip()]
    out.append("")
    out.append(END)
    return "\n".join(out)


def micro_table(runs):
    out = [MICRO_BEGIN, ""]
    out.append(f"Measured {datetime.date.today().isoformat()} on {cpu_model()} ({os.cpu_count()} logical CPUs), "
               "OPENBLAS_CORETYPE unset, by `make bench` (`deploy/bench.sh micro` alone): `bench train` of the "
               "seed config's step, ghostnet101, batch 128 per rank, 224×224, 2 threads. lanes = passes run at "
               "the same time, one thread each; % adjacent = the step's rate over an sgemm sample taken just "
               "before it (same machine load); predicted = the memory model the planner uses.")
    out.append("")
    out.append("| micro-batch | passes | lanes | step s | images/s | % adjacent | images/s vs one pass | peak RSS GB "
               "| predicted GB | model error |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    whole = next((r for r in runs if r.get("passes", 1) == 1), None)
    for r in runs:
        measured, predicted = r["peak_rss_bytes"], r.get("predicted_peak_rss_bytes")
        ratio = f"{r['images_per_second'] / whole['images_per_second']:.2f}×" if whole else "-"
        model = (f"{predicted / 1e9:.2f} | {(predicted - measured) / measured * 100:+.1f} %"
                 if predicted else "- | -")
        out.append(f"| {r['label']} | {r.get('passes', 1)} | {r.get('lanes', 1)} | {r['step_seconds']:.1f} "
                   f"| {r['images_per_second']:.2f} "
                   f"| {r['adjacent_peak_fraction'] * 100:.1f} | {ratio} | {measured / 1e9:.2f} | {model} |")
    out.append("")
    out.append(MICRO_END)
    return "\n".join(out)


def replace_between(existing, begin, end, section):
    """`existing` with the text between `begin` and `end` replaced by `section` (appended if absent)."""
    if begin in existing and end in existing:
        head, rest = existing.split(begin, 1)
        return head + section + rest.split(end, 1)[1]
    return existing.rstrip("\n") + "\n\n" + section + "\n"


def main():
    if sys.argv[1] == "micro":
        runs = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
        print(replace_between(open(sys.argv[3]).read(), MICRO_BEGIN, MICRO_END, micro_table(runs)), end="")
        return
    steps = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    data_lines = open(sys.argv[2]).read().splitlines()
    allreduce_lines = open(sys.argv[3]).read().splitlines()
    exchange_lines = open(sys.argv[4]).read().splitlines()
    section = generated(steps, data_lines, allreduce_lines, exchange_lines)
    existing = open(sys.argv[5]).read() if len(sys.argv) > 5 and os.path.exists(sys.argv[5]) else ""
    if BEGIN in existing and END in existing:
        print(replace_between(existing, BEGIN, END, section), end="")
    else:
        print("# Performance\n\nThe numbers of `make bench` (deploy/bench.sh); see the notes below the table.\n")
        print(section)


main()
