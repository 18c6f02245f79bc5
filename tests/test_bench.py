"""`python -m bench --quick` runs end to end and reports a complete, loss-free result.

Only the harness is checked here: nothing is asserted about time or speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_quick_bench_reports_every_incident_carried_once(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--var-dir", str(tmp_path / "var")],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    assert len(lines) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(lines[0].removeprefix("BENCH_JSON "))
    correctness = report["correctness"]
    assert correctness["lost"] == 0, correctness
    assert correctness["doubled"] == 0, correctness
    assert correctness["accepted"] > 0
    assert correctness["checked_over_http"] > 0
    assert report["accept"]["accepted"] > 0
    assert report["latency"]["notified"] > 0
    assert report["throughput"]["steps"]
    assert report["latency"]["cpu"]["cpu_seconds"] > 0
    assert report["memory"]["idle_rss_mib"] > 0
    assert report["stopped_cleanly"], report["exit_codes"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1. accept throughput" in result.stdout  # the human-readable table
