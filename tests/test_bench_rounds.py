"""bench/wrk_rounds.py: medians over interleaved rounds, the ratio taken within each round."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "wrk_rounds.py"

LINES = """\
RESULT mode=trivial requests=100 ok=100 bad=0 errors=0 rps=1000.0 p50_ms=5.00 p99_ms=9.00 app_cpu_ms=1.0 db_cpu_ms=0.0
RESULT mode=validate requests=50 ok=50 bad=0 errors=0 rps=300.0 p50_ms=20.00 p99_ms=40.00 app_cpu_ms=3.0 db_cpu_ms=0.5
RESULT mode=trivial requests=100 ok=100 bad=0 errors=0 rps=400.0 p50_ms=5.00 p99_ms=9.00 app_cpu_ms=2.0 db_cpu_ms=0.0
RESULT mode=validate requests=50 ok=48 bad=2 errors=0 rps=300.0 p50_ms=30.00 p99_ms=90.00 app_cpu_ms=4.0 db_cpu_ms=0.7
RESULT mode=trivial requests=100 ok=100 bad=0 errors=0 rps=2000.0 p50_ms=5.00 p99_ms=9.00 app_cpu_ms=0.8 db_cpu_ms=0.0
RESULT mode=validate requests=50 ok=50 bad=0 errors=0 rps=1200.0 p50_ms=25.00 p99_ms=60.00 app_cpu_ms=2.5 db_cpu_ms=0.4
"""


def run(text: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "trivial", "validate"], input=text, text=True,
                          capture_output=True)


def test_medians_and_per_round_ratio():
    fields = run(LINES).stdout.split()
    # rates 1000/400/2000 -> 1000 and 300/300/1200 -> 300; per-round ratios 0.3/0.75/0.6 -> 0.6, not the
    # 0.3 of the medians' ratio: each round is compared with its own trivial rate
    assert fields[:3] == ["1000.0", "300.0", "0.600"]
    assert fields[3:7] == ["25.00", "60.00", "148", "2"]
    assert fields[7:] == ["1.000", "3.500"]


@pytest.mark.parametrize("text", ["", LINES.splitlines(keepends=True)[0]])
def test_unpaired_rounds_are_refused(text):
    result = run(text)
    assert result.returncode != 0 and "expected as many" in result.stderr
