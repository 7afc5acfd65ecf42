"""Response time of `pipe ui`'s runs list with 10,000 runs in the store: the server's own time
(query, page of rows, template; in-process) and over real HTTP (uvicorn on loopback), for the first
page, a filtered page and a late page; and of one run's page.
Run: python benchmarks/ui_list.py [RUNS] [REQUESTS]"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.ui.app import UI
from runner.ui.query import Filters
from runner.ui.views import runs_page
from tests.support.runs import fake_runs


def timed_get(url: str, rounds: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            size = len(response.read())
        times.append(time.perf_counter() - start)
    return statistics.median(times), size


def main() -> None:
    import uvicorn

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory)
        ids = fake_runs(state, runs - runs // 10) + fake_runs(state, runs // 10, status="failed", pipeline="other")
        ui = UI(state)
        server_times = {}
        for name, filters in (
            ("first page", Filters()),
            ("failed of pipeline other", Filters(status="failed", pipeline="other")),
            ("page 150", Filters(page=150)),
        ):
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                ui.render("_runs_rows.html", runs=runs_page(state, filters)["runs"])
                times.append(time.perf_counter() - start)
            server_times[name] = statistics.median(times)
        server = uvicorn.Server(uvicorn.Config(UI(state).application(), host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        listing, size = timed_get(base + "/", rounds)
        one, _ = timed_get(f"{base}/runs/{ids[0]}", rounds)
        server.should_exit = True
        thread.join()
    for name, seconds in server_times.items():
        print(f"runs list with {runs} runs, {name}: {seconds * 1000:.1f} ms server time (median of {rounds})")
    print(f"runs list with {runs} runs over HTTP: {listing * 1000:.1f} ms (median of {rounds}, {size // 1024} KiB)")
    print(f"one run's page:            {one * 1000:.1f} ms")


if __name__ == "__main__":
    main()
