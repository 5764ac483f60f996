"""Many crash rounds: SIGKILL the real server at random moments during uploads, activations and
deletes, restart, and check every acknowledged operation (tests/crash_harness.py does the work).

    python bench/reliability/crash_rounds.py --rounds 100

Prints one line per round and a summary; exits 1 at the first round whose check fails.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.crash_harness import Expected, check_last_crash, run_round  # noqa: E402
from tests.tiny_backbone import save_tiny_backbone  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="kept for inspection if given")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        backbone = save_tiny_backbone(work / "tiny-bert")
        expected = Expected(work / "prompts")
        log = work / "server.log"
        started = time.monotonic()
        acknowledged = in_flight = 0
        for number in range(1, args.rounds + 1):
            try:
                report = run_round(expected, backbone, log, rng)
            except AssertionError as exc:
                print(f"round {number}: CHECK FAILED: {exc} (seed {seed}, log {log})")
                return 1
            acknowledged += report.acknowledged
            in_flight += report.in_flight_at_kill
            print(
                f"round {number}: killed after {report.killed_after_s * 1000:.0f} ms, "
                f"{report.acknowledged} ops acknowledged, {report.in_flight_at_kill} in flight",
                flush=True,
            )
        check_last_crash(expected, backbone, log)
    print(
        f"CRASH_ROUNDS rounds={args.rounds} seed={seed} acknowledged_ops={acknowledged} "
        f"in_flight_at_kill={in_flight} failures=0 wall_s={time.monotonic() - started:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
