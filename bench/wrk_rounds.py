"""Medians over interleaved wrk rounds (used by the bench scripts).

Reads the `RESULT mode=… rps=… p50_ms=… p99_ms=… ok=… bad=…` lines of `bench/*_wrk.lua` on stdin, in
the order they ran (each round: the baseline mode, then the measured mode). Prints one line:
`baseline_rps measured_rps ratio measured_p50 measured_p99 measured_ok_total measured_bad_total
baseline_cpu_ms measured_cpu_ms` (the last two: app + database CPU milliseconds per request, when the
lines carry `app_cpu_ms`/`db_cpu_ms`, else 0),
where rates, latencies and the ratio are medians over the rounds (the ratio is taken per round, so
a round run while the machine was slow is compared with its own baseline).

Usage: python bench/wrk_rounds.py BASELINE_MODE MEASURED_MODE < lines
"""

import re
import statistics
import sys


def parse(line: str) -> dict:
    fields = dict(re.findall(r"(\w+)=([\w.]+)", line))
    return {"mode": fields["mode"], **{k: float(v) for k, v in fields.items() if k != "mode"}}


def main(baseline: str, measured: str) -> None:
    results = [parse(line) for line in sys.stdin if line.startswith("RESULT")]
    base = [r for r in results if r["mode"] == baseline]
    meas = [r for r in results if r["mode"] == measured]
    if not base or len(base) != len(meas):
        sys.exit(f"expected as many {baseline} as {measured} rounds, got {len(base)} and {len(meas)}")
    ratio = statistics.median(m["rps"] / b["rps"] for b, m in zip(base, meas))
    print(f"{statistics.median(r['rps'] for r in base):.1f} {statistics.median(r['rps'] for r in meas):.1f} "
          f"{ratio:.3f} {statistics.median(r['p50_ms'] for r in meas):.2f} "
          f"{statistics.median(r['p99_ms'] for r in meas):.2f} {int(sum(r['ok'] for r in meas))} "
          f"{int(sum(r['bad'] for r in meas))} {cpu(base):.3f} {cpu(meas):.3f}")


def cpu(results: list[dict]) -> float:
    return statistics.median(r.get("app_cpu_ms", 0.0) + r.get("db_cpu_ms", 0.0) for r in results)


if __name__ == "__main__":
    main(*sys.argv[1:3])
