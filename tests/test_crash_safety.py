"""SIGKILL the real server at random moments during uploads, activations and deletes: after each
restart every acknowledged version is intact, nothing half-written is visible, no temp file is
left. A few rounds here; bench/reliability/crash_rounds.py runs many."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.crash_harness import Expected, check_last_crash, run_round

pytestmark = pytest.mark.slow
ROUNDS = 2


def test_sigkill_during_admin_writes_loses_nothing_acknowledged(
    tiny_backbone_dir: Path, tmp_path: Path
) -> None:
    expected = Expected(tmp_path / "prompts")
    log = tmp_path / "server.log"
    rng = random.Random()
    reports = [run_round(expected, tiny_backbone_dir, log, rng) for _ in range(ROUNDS)]
    check_last_crash(expected, tiny_backbone_dir, log)
    assert sum(r.acknowledged for r in reports) > 0, "no operation ran before the kills"
    assert "Traceback" not in log.read_text()
