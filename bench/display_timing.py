"""How long images really stay on screen: frame-counted (requestAnimationFrame) displays against
plain `show(); setTimeout(hide, ms)`, in Debian's headless Chromium, on the timing harness
(static/bench/timing.html). Both methods run in one shuffled sequence of displays and are
measured by the same rAF observer; prints the error distributions and their ratio.

Run from the repository root: .venv/bin/python bench/display_timing.py [--trials 200]
--busy-ms 8 adds main-thread work (tasks of up to 8 ms, as a page handling messages has), which
delays timers but not the frame clock.
"""

import argparse
import functools
import http.server
import random
import statistics
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLOCK_GRAIN_MS = 0.1  # Chromium's timestamp resolution without cross-origin isolation


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
    }

    def log_message(self, format, *args):
        pass


def quantile(values, q):
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def describe(errors):
    return statistics.median(errors), quantile(errors, 0.95), max(errors), statistics.fmean(errors)


def ratio(slow: float, fast: float) -> str:
    # The frame-counted error can be below what the clock resolves: divide by the clock's grain
    # then, which gives a lower bound of the ratio, not infinity.
    if fast < CLOCK_GRAIN_MS:
        return f">= {slow / CLOCK_GRAIN_MS:.0f}x"
    return f"{slow / fast:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="displays per method (>= 200)")
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument(
        "--busy-ms", type=float, default=0.0, help="main-thread tasks of up to this long"
    )
    args = parser.parse_args()

    rng = random.Random(args.seed)
    # The staircase's 10 ms grid over its [100, 1000] ms range.
    exposures = [rng.randrange(100, 1001, 10) for _ in range(args.trials)]

    handler = functools.partial(QuietHandler, directory=str(ROOT / "static"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/bench/timing.html"

    started = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_function("window.hypeTiming !== undefined")
        refresh_ms = page.evaluate("window.hypeTiming.ready.then((r) => r.refreshMs)")
        intervals = page.evaluate(
            """() => new Promise((resolve) => {
                const t = [];
                const tick = (now) => { t.push(now);
                  if (t.length > 300) resolve(t.slice(1).map((x, i) => x - t[i]));
                  else requestAnimationFrame(tick); };
                requestAnimationFrame(tick);
            })"""
        )
        version = browser.version
        results = page.evaluate(
            "(options) => window.hypeTiming.run(options)",
            {
                "methods": ["raf", "timeout"],
                "exposures": exposures,
                "repeats": 1,
                "seed": 1,
                "busyMs": args.busy_ms,
            },
        )
        browser.close()
    server.shutdown()
    elapsed = time.perf_counter() - started

    print(f"Chromium {version}, headless; {len(results)} displays in {elapsed:.0f} s")
    print(
        f"rAF cadence: refresh {refresh_ms:.3f} ms ({1000 / refresh_ms:.2f} Hz); "
        f"300 raw intervals: median {statistics.median(intervals):.2f}, "
        f"min {min(intervals):.2f}, max {max(intervals):.2f} ms"
    )
    print(f"exposures: {args.trials} per method, 100-1000 ms on a 10 ms grid (seed {args.seed})")
    busy = f"tasks of up to {args.busy_ms:g} ms" if args.busy_ms else "idle"
    print(f"main thread: {busy}")
    print()
    header = f"{'method':<20}{'n':>5}  {'median':>8}{'p95':>8}{'max':>8}{'mean':>8}"
    table = {}
    for title, key in [
        ("|shown - requested| (ms)", "requested"),
        ("|shown - frames x refresh| (ms)", "frames"),
    ]:
        print(title)
        print(header)
        for method, label in [("raf", "rAF, frame-counted"), ("timeout", "setTimeout")]:
            rows = [r for r in results if r["method"] == method]
            if key == "requested":
                errors = [abs(r["shown_ms"] - r["requested_ms"]) for r in rows]
            else:
                errors = [abs(r["shown_ms"] - r["frames"] * r["refresh_ms"]) for r in rows]
            stats = describe(errors)
            table[(method, key)] = stats
            print(f"{label:<20}{len(rows):>5}  " + "".join(f"{v:>8.2f}" for v in stats))
        print()

    exact = {
        method: sum(r["frames_shown"] == r["frames"] for r in results if r["method"] == method)
        for method in ("raf", "timeout")
    }
    print(
        "displays lasting exactly their frames: "
        f"rAF {exact['raf']}/{args.trials}, setTimeout {exact['timeout']}/{args.trials}"
    )
    print(
        f"setTimeout error / rAF error (an error under the {CLOCK_GRAIN_MS} ms clock counts as it):"
    )
    for key, title in [
        ("requested", "|shown - requested|"),
        ("frames", "|shown - frames x refresh|"),
    ]:
        slow, fast = table[("timeout", key)], table[("raf", key)]
        print(f"  {title:<28} mean {ratio(slow[3], fast[3])}, p95 {ratio(slow[1], fast[1])}")
    if abs(refresh_ms - 1000 / 60) > 0.5:
        print(f"note: headless rAF does not run at 60 Hz here ({1000 / refresh_ms:.2f} Hz)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
