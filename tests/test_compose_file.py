"""docker-compose.yml stays in step with the settings: every one reaches the container, and a stop
gives the drain its time (ops audit 5: most PROMPTSERVE_* variables were silently dropped, and
Docker's default 10 s stop killed a 30 s drain in progress)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXED_BY_THE_IMAGE = {"host", "port", "prompts_dir"}


def service() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["promptserve"]


def test_every_setting_but_the_image_s_own_is_passed_through() -> None:
    passed = set(service()["environment"])
    wanted = {f"PROMPTSERVE_{name.upper()}" for name in Settings.model_fields}
    wanted -= {f"PROMPTSERVE_{name.upper()}" for name in FIXED_BY_THE_IMAGE}
    assert passed == wanted
    assert set(service()["environment"].values()) == {None}, "no defaults of its own"


def test_a_stop_waits_longer_than_the_drain() -> None:
    grace = re.fullmatch(r"\$\{PROMPTSERVE_STOP_GRACE:-(\d+)s\}", service()["stop_grace_period"])
    assert grace is not None
    assert int(grace.group(1)) > Settings.model_fields["drain_grace_s"].default
