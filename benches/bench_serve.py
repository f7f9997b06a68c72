"""Load test of `fastface serve` on the loopback interface.

    python benches/bench_serve.py [--requests 500] [--concurrency 1 4 8] [--quick]
    python benches/bench_serve.py --hostile [--requests 200] [--memory-budget BYTES]

Starts the real server (a subprocess on 127.0.0.1, an ephemeral port, a fresh
data folder), enrols the 93 sample training photos of 5 people, then sends
``--requests`` identify requests (the 25 validation photos in turn, multipart)
at each concurrency, every client thread with its own keep-alive connection.
Prints errors (must be 0), requests per second, p50 and p99 latency, and the
server's resident memory (VmRSS) after each level.

The peer is the same work in-process on the same threads (decode, detect,
align, embed, search with one recognizer and one gallery, no HTTP): the ratio
column is server requests/s over in-process requests/s, what the HTTP layer
costs. The closing note gives the throughput of 4 client threads against 1.

``--hostile``: the same identify traffic from 2 clients while 8 more send
bombs in turn (every file of ``tests/lying_images.py``, enrolments of 16 and
32 blank 7000x7000 PNGs, 7000x7000 photos to detect, JSON nested 1,000 deep):
prints the ordinary requests' errors, rate and latency, the bombs' answers by
status, the count of answers of 500 or above (must be 0) and the server's peak
resident memory against its ``--memory-budget`` (must be below).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import fastface
import httpx
import numpy as np
from fastface._models import MODELS_DIR, SAMPLES_DIR


def start_server(data: Path, threads: int | None, *extra: str) -> tuple[subprocess.Popen[str], str]:
    flags = ["--port", "0", "--data", str(data), "--log-level", "warning", *extra]
    if threads:
        flags += ["--threads", str(threads)]
    server = subprocess.Popen(
        [sys.executable, "-m", "fastface", "serve", *flags],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    for line in server.stderr:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            # Keep reading stderr so the server never blocks on a full pipe.
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, found.group(1)
    raise SystemExit(f"the server did not start (exit status {server.wait()})")


def rss_mib(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    now = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return now / 1024, peak / 1024


BARE = """
import re, sys
from pathlib import Path
import fastface
samples = Path(sys.argv[1])
recognizer = fastface.FaceRecognizer()
for person in sorted((samples / "train").iterdir()):
    recognizer.embed_many([p.read_bytes() for p in sorted(person.iterdir())])
for photo in sorted((samples / "val").glob("*/*")):
    recognizer.embed(fastface.load_image(photo.read_bytes()))
status = Path("/proc/self/status").read_text()
print(int(re.search(r"VmRSS:\\s+(\\d+)", status).group(1)) / 1024)
"""


def bare_rss_mib() -> float:
    """Resident memory of a process holding just one recognizer after the same
    photos as the server (the enrolments, then each probe once)."""
    out = subprocess.run(
        [sys.executable, "-c", BARE, str(SAMPLES_DIR)], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def load(url: str, photos: list[bytes], requests: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    next_request = iter(range(requests))

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=120) as c:
            while True:
                with lock:
                    i = next(next_request, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    answer = c.post("/v1/identify", files={"image": photos[i % len(photos)]})
                    ok = answer.status_code == 200 and answer.json()["faces"]
                except httpx.HTTPError:
                    ok = False
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    errors += not ok

    started = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    return {
        "rps": requests / wall,
        "p50": percentile(latencies, 50) * 1e3,
        "p99": percentile(latencies, 99) * 1e3,
        "errors": errors,
    }


def in_process(
    recognizer: fastface.FaceRecognizer,
    gallery: fastface.Gallery,
    photos: list[bytes],
    requests: int,
    concurrency: int,
) -> float:
    """Requests per second of the same work without HTTP."""

    def one(i: int) -> None:
        faces = recognizer.embed(fastface.load_image(photos[i % len(photos)]))
        gallery.search(np.stack([f.embedding for f in faces if f.embedding is not None]))

    one(0)  # warm-up
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - started)


def bombs() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, path, httpx arguments) of each hostile request."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from lying_images import LYING

    ok, encoded = cv2.imencode(".png", np.zeros((7000, 7000, 3), np.uint8))
    blank = encoded.tobytes()
    out: list[tuple[str, str, dict[str, Any]]] = [
        (f"lying {name}", "/v1/detect", {"files": {"image": data}})
        for name, (data, _) in LYING.items()
    ]
    out += [
        ("16 blank 7000x7000", "/v1/subjects/bomb/faces", {"files": [("image", blank)] * 16}),
        ("32 blank 7000x7000", "/v1/subjects/bomb/faces", {"files": [("image", blank)] * 32}),
        ("7000x7000 detect", "/v1/detect", {"files": {"image": blank}}),
        (
            "json 1000 deep",
            "/v1/identify",
            {
                "content": b"[" * 1000 + b"]" * 1000,
                "headers": {"content-type": "application/json"},
            },
        ),
    ]
    return out


def hostile(args: argparse.Namespace, probes: list[bytes], train: list[Path]) -> None:
    """Ordinary identify traffic among bombs; see the module's text."""
    import collections

    budget = args.memory_budget
    with tempfile.TemporaryDirectory() as data:
        extra = ["--memory-budget", str(budget)] if budget else []
        server, url = start_server(Path(data), args.threads, *extra)
        try:
            with httpx.Client(base_url=url, timeout=300) as c:
                for person in sorted({p.parent.name for p in train}):
                    files = [("image", p.read_bytes()) for p in train if p.parent.name == person]
                    c.post(f"/v1/subjects/{person}/faces", files=files).raise_for_status()
                load(url, probes, 10, 1)  # warm-up: every network loaded
            start_rss = rss_mib(server.pid)[0]
            attacks = bombs()
            answers: collections.Counter[tuple[str, int]] = collections.Counter()
            done = threading.Event()
            lock = threading.Lock()

            def attacker(first: int) -> None:
                with httpx.Client(base_url=url, timeout=300) as c:
                    turn = first
                    while not done.is_set():
                        name, path, kwargs = attacks[turn % len(attacks)]
                        turn += 1
                        try:
                            status = c.post(path, **kwargs).status_code
                        except httpx.HTTPError:
                            status = 0
                        with lock:
                            answers[(name, status)] += 1

            threads = [threading.Thread(target=attacker, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            ordinary = load(url, probes, args.requests, 2)
            done.set()
            for t in threads:
                t.join()
            now, peak = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    budget_mib = (budget or 1536 * 2**20) / 2**20
    by_status = collections.Counter[int]()
    for (_, status), n in answers.items():
        by_status[status] += n
    print(
        f"hostile mix: {args.requests} identify requests from 2 clients among "
        f"{sum(answers.values())} bombs from 8 clients"
    )
    print(
        f"ordinary: errors {int(ordinary['errors'])}, {ordinary['rps']:.1f} req/s, "
        f"p50 {ordinary['p50']:.0f} ms, p99 {ordinary['p99']:.0f} ms"
    )
    for (name, status), n in sorted(answers.items()):
        print(f"  bomb {name:<34} {status:>4} x {n}")
    fatal = sum(n for s, n in by_status.items() if s >= 500 and s != 503 or s == 0)
    print(f"answers by status: {dict(sorted(by_status.items()))}; 5xx other than 503: {fatal}")
    print(
        f"server resident memory: {start_rss:.0f} MiB before, {now:.0f} MiB after, peak "
        f"{peak:.0f} MiB; budget {budget_mib:.0f} MiB"
    )
    if ordinary["errors"] or fatal or peak > budget_mib:
        raise SystemExit("the hostile mix broke the service")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="identify requests per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--threads", type=int, help="the server's worker threads (default: cores)")
    parser.add_argument("--quick", action="store_true", help="50 requests per level")
    parser.add_argument("--hostile", action="store_true", help="identify traffic among bombs")
    parser.add_argument("--memory-budget", type=int, help="the server's --memory-budget")
    args = parser.parse_args()
    requests = 50 if args.quick else args.requests

    train = sorted(p for p in (SAMPLES_DIR / "train").glob("*/*") if p.is_file())
    probes = [p.read_bytes() for p in sorted((SAMPLES_DIR / "val").glob("*/*")) if p.is_file()]
    if args.hostile:
        args.requests = requests
        hostile(args, probes, train)
        return
    with tempfile.TemporaryDirectory() as data:
        server, url = start_server(Path(data), args.threads)
        try:
            idle = rss_mib(server.pid)
            recognizer = fastface.FaceRecognizer()
            gallery = fastface.Gallery()
            with httpx.Client(base_url=url, timeout=300) as c:
                health = c.get("/healthz").json()
                for person in sorted({p.parent.name for p in train}):
                    files = [("image", p.read_bytes()) for p in train if p.parent.name == person]
                    answer = c.post(f"/v1/subjects/{person}/faces", files=files)
                    answer.raise_for_status()
                    gallery.add(person, [p for p in train if p.parent.name == person])
                faces = c.get("/healthz").json()["faces"]
                load(url, probes, 10, 1)  # warm-up
            print(
                f"fastface serve on {url}: model {health['model_id']}, engine {health['engine']}, "
                f"{faces} faces enrolled, {os.cpu_count()} cores; "
                f"{requests} identify requests per level (the {len(probes)} sample val photos)"
            )
            print(
                f"resident memory: server after start {idle[0]:.0f} MiB; a process with just "
                f"the recognizer, after the same enrolments and probes: {bare_rss_mib():.0f} MiB"
            )
            header = (
                f"{'clients':>7} {'errors':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'in-proc req/s':>13} {'ratio':>6} {'RSS MiB':>8} {'peak':>6}"
            )
            print(header)
            results = {}
            for concurrency in args.concurrency:
                r = load(url, probes, requests, concurrency)
                peer = in_process(recognizer, gallery, probes, requests, concurrency)
                now, peak = rss_mib(server.pid)
                results[concurrency] = r
                print(
                    f"{concurrency:7d} {int(r['errors']):6d} {r['rps']:7.1f} {r['p50']:7.1f} "
                    f"{r['p99']:7.1f} {peer:13.1f} {r['rps'] / peer:6.2f} {now:8.0f} {peak:6.0f}"
                )
        finally:
            server.terminate()
            server.wait(30)
    model_mib = sum(f.stat().st_size for f in MODELS_DIR.glob("*.onnx")) / 2**20
    if 1 in results and 4 in results:
        print(
            f"throughput with 4 clients / 1 client: {results[4]['rps'] / results[1]['rps']:.2f}; "
            f"the ONNX files are {model_mib:.0f} MiB, loaded once in the one server process"
        )
    if any(r["errors"] for r in results.values()):
        raise SystemExit("errors under load")


if __name__ == "__main__":
    main()
