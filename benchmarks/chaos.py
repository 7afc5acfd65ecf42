"""Chaos, in full: pipe killed with SIGKILL at 30 seeded random moments and with SIGTERM at 10 of a
run that writes files, commits, pushes, opens a pull request and comments on the test GitHub
server, then at EARLY moments (half each signal) within half a second of the run being stored (its
start-up, where what a resume needs is still being written: a slow CI machine landed there);
each then resumed and compared with a run nobody interrupted (tree, refs, pull requests,
comments), with the store's integrity, leftover containers and secrets on disk checked.
Prints one line per trial and the tally; exits 1 if any trial differs.

Run: python benchmarks/chaos.py [KILLS] [TERMS] [SEED] [EARLY]
"""

from __future__ import annotations

import random
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.chaos import trial


def main(kills: int = 30, terms: int = 10, seed: int = 2026, early: int = 10) -> int:
    with tempfile.TemporaryDirectory(prefix="pipe-chaos-") as scratch:
        root = Path(scratch)
        reference = trial(root / "reference", None)
        if reference.problems:
            print(f"the uninterrupted run failed: {reference.problems}")
            return 1
        print(f"uninterrupted: {reference.seconds:.1f}s")
        rng = random.Random(seed)
        plan = [(signal.SIGKILL, False)] * kills + [(signal.SIGTERM, False)] * terms
        plan += [(signal.SIGKILL if n % 2 == 0 else signal.SIGTERM, True) for n in range(early)]
        same = {False: 0, True: 0}
        for index, (signal_number, after_recorded) in enumerate(plan):
            delay = rng.uniform(0.0, 0.5) if after_recorded else rng.uniform(0.1, reference.seconds)
            outcome = trial(root / f"trial-{index}", delay, signal_number, after_recorded=after_recorded)
            ok = not outcome.problems and outcome.comparable == reference.comparable
            same[after_recorded] += ok
            name = signal.Signals(signal_number).name
            when = f"{delay:5.2f}s after the run was stored" if after_recorded else f"{delay:5.2f}s"
            verdict = "same" if ok else f"DIFFERENT {outcome.problems or outcome.comparable}"
            took = f"{outcome.resumes} resume(s), {outcome.seconds:5.1f}s"
            print(f"{index + 1:2d} {name} at {when}, {took}: {verdict}")
        print(
            f"at random moments: {same[False]}/{kills + terms} identical; at start-up: {same[True]}/{early} identical"
        )
        return 0 if same[False] == kills + terms and same[True] == early else 1


if __name__ == "__main__":
    sys.exit(main(*(int(arg) for arg in sys.argv[1:])))
