"""The table and the verdict of `make bench-compare` (bench/run_compare_bench.sh), from its wrk lines on stdin.

Input lines (any other line is ignored):
  ROUTEDEF route=ID gate=G base=ID label=TEXT   one per route, in table order. G: a number (this project
      must reach G x the original's rate), or "info" (reported, never gates). base: the route whose
      ORIGINAL figure this row is compared with (itself, except for the agent-key heartbeat, which the
      original does not have and which is compared with the original's own heartbeat).
  RESULT side=original|ours route=ID ok=… bad=… rps=… p50_ms=… p99_ms=…   (bench/compare_wrk.lua),
      in the order they ran; rps counts successful answers only.
Rates and p99 are medians over the rounds; the ratio is the median of the per-round ratios (each round's
pair ran back to back, so a round run while the shared machine was slow is compared with itself).
Prints a markdown table and PASS/FAIL lines; exits 1 when a gate fails or this project answered anything
but success, 0 otherwise. Without any original line (no ORIGINAL_URL) only this project's column is
filled and nothing is gated but this project's answers.
"""

import re
import statistics
import sys


def fields(line: str) -> dict:
    head, _, label = line.partition(" label=")
    out = dict(re.findall(r"(\w+)=(\S+)", head))
    if label:
        out["label"] = label.strip()
    return out


def main() -> int:
    routes, results = [], []
    for line in sys.stdin:
        if line.startswith("ROUTEDEF "):
            routes.append(fields(line))
        elif line.startswith("RESULT "):
            results.append(fields(line))
    by = {}
    for r in results:
        by.setdefault((r["side"], r["route"]), []).append(r)
    have_original = any(side == "original" for side, _ in by)

    def med(side, route, key):
        rows = by.get((side, route), [])
        return statistics.median(float(r[key]) for r in rows) if rows else None

    def bad(side, route):
        return sum(int(r["bad"]) for r in by.get((side, route), []))

    def fmt(value, unit=""):
        return "—" if value is None else (f"{value:,.0f}{unit}" if value >= 100 else f"{value:.1f}{unit}")

    print("| route | original req/s | this project req/s | ratio | original p99 | this project p99 |")
    print("|---|---|---|---|---|---|")
    checks, warnings = [], []
    for route in routes:
        rid, base, gate, label = route["route"], route["base"], route["gate"], route["label"]
        ours_rows = by.get(("ours", rid), [])
        orig_rows = by.get(("original", base), [])
        ratio = None
        if ours_rows and orig_rows and len(ours_rows) == len(orig_rows):
            ratios = [float(o["rps"]) / float(b["rps"]) for o, b in zip(ours_rows, orig_rows) if float(b["rps"]) > 0]
            ratio = statistics.median(ratios) if ratios else None
        orig_rps = med("original", base, "rps")
        orig_cell = fmt(orig_rps)
        if base != rid and orig_rps is not None:
            orig_cell += f" (its {base})"
        ours_bad, orig_bad = bad("ours", rid), bad("original", base)
        if orig_bad:
            orig_cell += f" ({orig_bad} failed)"
        ours_cell = fmt(med("ours", rid, "rps")) + (f" ({ours_bad} failed)" if ours_bad else "")
        target = "" if gate == "info" or not have_original else f" (≥ {float(gate):g})"
        ratio_cell = ("—" if ratio is None else f"{ratio:.2f}") + target
        print(f"| {label} | {orig_cell} | {ours_cell} | {ratio_cell} | {fmt(med('original', base, 'p99_ms'), ' ms')} "
              f"| {fmt(med('ours', rid, 'p99_ms'), ' ms')} |")
        if ours_bad:
            checks.append((False, f"{label}: this project answered {ours_bad} requests with a failure"))
        if not have_original or gate == "info":
            continue
        if orig_bad:
            warnings.append(f"{label}: the original failed {orig_bad} requests; its figure is not comparable "
                            "(not gated)")
            continue
        if ratio is None:
            checks.append((False, f"{label}: no figure to compare"))
            continue
        checks.append((ratio >= float(gate), f"{label}: ratio {ratio:.2f} (target ≥ {float(gate):g})"))
    print()
    if not have_original:
        print("ORIGINAL_URL not set: this project's side only; no ratio is gated.")
    for text in warnings:
        print(f"  WARN  {text}")
    for passed, text in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {text}")
    return 0 if all(passed for passed, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
