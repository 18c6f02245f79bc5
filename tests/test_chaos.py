"""The chaos harness, short: faults under load against a private platform on its own
PostgreSQL, and the harness's verdict: nothing lost, nothing doubled, no 500."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from chaos.harness import Chaos, parse_args

# A killed consumer is test_resilience's; here the faults a client sees.
FAULTS = ["kill:intake", "nats-stop", "postgres-kill"]


def test_faults_under_load_lose_nothing_double_nothing_and_never_answer_500(
    tmp_path: Path,
) -> None:
    figures = tmp_path / "chaos.json"
    args = parse_args(
        [
            "--rate", "10",
            "--command-share", "0.1",
            "--steady", "1",
            "--faults", ",".join(FAULTS),
            "--nats-outage", "3",
            "--postgres-outage", "2",
            "--drain-timeout", "120",
            "--give-up", "60",
            "--var-dir", str(tmp_path / "var"),
            "--json", str(figures),
        ]
    )  # fmt: skip
    # In this process, so that the harness's own clean-up runs whatever happens.
    code = asyncio.run(Chaos(args).run())
    report = json.loads(figures.read_text())
    assert report["verdict"] == [] and code == 0, report
    assert report["faults"][1]["fault"].split()[-1] == "intake"
    assert len(report["faults"]) == 1 + len(FAULTS)
    for row in report["faults"]:
        assert row["accepted"] > 0 and row["lost"] == 0 and row["doubled"] == 0, row
        assert row["clients_got"].get("500", 0) == 0, row
        # The killed services came back under supervision: reports flowed on after each fault.
        assert row["first_report_through_s"] is not None, row
    assert report["lifecycles_done"] > 0
