"""`fastface serve --camera`: CPU, memory, dropped frames and the time from a
face appearing to its `named` event, with one and with two 720p streams.

    python benches/bench_cameras.py [--seconds 40] [--fps 15] [--cameras 1 2]

Each camera is an MJPEG stream served here over HTTP at ``--fps`` frames/s
(1280x720, JPEG quality 90), looping a 6-second scene: an empty hall for one
second, then an enrolled person (a val photo, 220 px) appears at once and
drifts across for four seconds, then the hall is empty again. The service runs
as `fastface serve` in its own process with ``--camera`` per stream and
``--mqtt`` to a mosquitto started here (tests/mqtt_broker.py); a subscriber
takes each `named` event's time (the service's clock) and subtracts the time
this script sent the scene's first frame with the face: appearance-to-named
latency, one sample per scene per camera.

After a warm-up (two scenes), the service's CPU time (utime + stime from
/proc) over the rest is divided by the wall time: cores used. Memory is the
service's VmRSS at the end and its peak VmHWM. Dropped frames are the camera
readers' (frames the tracker was late for, newest kept); "behind" is frames
sent minus frames tracked minus dropped at the end (a backlog would grow it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mqtt_broker import Mosquitto, Subscriber  # noqa: E402 (after the path it lives on)
from video_clips import background, enrolled_gallery, photos  # noqa: E402

WIDTH, HEIGHT = 1280, 720
SCENE_SECONDS = 6.0
FACE_FROM, FACE_UNTIL = 1.0, 5.0  # seconds into the scene
PERSON = "elton_john"
SIDE = 220
KEY = "bench-key-0123456789abcdef"


def scene(fps: float) -> list[bytes]:
    """The looped scene's frames as JPEG."""
    ground = background(WIDTH, HEIGHT)
    face = cv2.resize(
        cv2.cvtColor(cv2.imread(str(photos("val", PERSON)[0])), cv2.COLOR_BGR2RGB), (SIDE, SIDE)
    )
    frames = []
    count = int(round(SCENE_SECONDS * fps))
    for index in range(count):
        t = index / fps
        image = ground.copy()
        if FACE_FROM <= t < FACE_UNTIL:
            x = int(300 + 120 * (t - FACE_FROM))
            image[200 : 200 + SIDE, x : x + SIDE] = face
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        assert ok
        frames.append(data.tobytes())
    return frames


class Streams:
    """One MJPEG server; each path /<n> is a camera looping the scene, sending
    frames on a fixed clock; the send time of every scene's first face frame
    is kept per camera."""

    def __init__(self, frames: list[bytes], fps: float) -> None:
        self.appeared: dict[str, list[float]] = {}
        self.sent: dict[str, int] = {}
        self.stop = threading.Event()
        streams = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                camera = self.path.strip("/")
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                began, index = time.time(), 0
                first_face = int(round(FACE_FROM * fps))
                try:
                    while not streams.stop.is_set():
                        data = frames[index % len(frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode())
                        self.wfile.write(data + b"\r\n")
                        if index % len(frames) == first_face:
                            streams.appeared.setdefault(camera, []).append(time.time())
                        streams.sent[camera] = streams.sent.get(camera, 0) + 1
                        index += 1
                        time.sleep(max(0.0, began + index / fps - time.time()))
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int, field: str) -> float:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert found
    return int(found.group(1)) / 1024


def run(cameras: int, seconds: float, fps: float, frames: list[bytes], folder: Path) -> dict:
    broker = Mosquitto(folder)
    broker.start()
    watcher = Subscriber(broker, ["fastface/+/events"], persistent=False, name="bench")
    streams = Streams(frames, fps)
    gallery = folder / "people.gallery"
    enrolled_gallery([PERSON, "ben_afflek"]).save(gallery)
    (folder / "keys").write_text(KEY + "\n")
    flags = []
    for n in range(cameras):
        flags += ["--camera", f"cam{n}=http://127.0.0.1:{streams.port}/cam{n}"]
    server = subprocess.Popen(
        [sys.executable, "-m", "fastface", "serve", "--port", "0", "--data", str(folder / "d"),
         "--gallery", str(gallery), "--api-key-file", str(folder / "keys"),
         "--mqtt", broker.url, "--log-level", "warning", *flags],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = ""
    assert server.stderr is not None
    for line in server.stderr:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            url = found.group(1)
            break
    threading.Thread(target=server.stderr.read, daemon=True).start()
    try:
        warm_up = 2 * SCENE_SECONDS
        time.sleep(warm_up)
        cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(seconds)
        cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - wall0)
        rss, peak = memory_mb(server.pid, "VmRSS"), memory_mb(server.pid, "VmHWM")
        status = httpx.get(f"{url}/v1/cameras", headers={"X-API-Key": KEY}).json()["cameras"]
        sent = dict(streams.sent)
    finally:
        streams.close()
        server.terminate()
        server.wait(30)
        watcher.close()
        broker.stop()
    latencies = []
    named = [json.loads(m.payload) for m in watcher.messages]
    for camera, appeared in streams.appeared.items():
        times = sorted(e["time"] for e in named if e["type"] == "named" and e["camera"] == camera)
        for at in appeared:
            after = [t for t in times if at <= t < at + FACE_UNTIL - FACE_FROM]
            if after:
                latencies.append(after[0] - at)
    tracked = sum(c["frames"] for c in status)
    dropped = sum(c["dropped"] for c in status)
    return {
        "cameras": cameras,
        "cores": cpu,
        "rss_mb": rss,
        "peak_mb": peak,
        "sent": sum(sent.values()),
        "tracked": tracked,
        "dropped": dropped,
        "behind": sum(sent.values()) - tracked - dropped,
        "scenes": sum(len(a) for a in streams.appeared.values()),
        "named": len(latencies),
        "latency_median": statistics.median(latencies) if latencies else float("nan"),
        "latency_max": max(latencies) if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="measured, after warm-up")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    frames = scene(args.fps)
    print(f"{os.cpu_count()} cores; 1280x720 MJPEG at {args.fps:g} frames/s per camera; "
          f"{args.seconds:g} s measured after {2 * SCENE_SECONDS:g} s of warm-up")  # fmt: skip
    print("| cameras | cores used | RSS MB (peak) | frames sent | tracked | dropped | behind "
          "| named / scenes | appear -> named median (max) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for count in args.cameras:
        with tempfile.TemporaryDirectory() as folder:
            r = run(count, args.seconds, args.fps, frames, Path(folder))
        print(
            f"| {r['cameras']} | {r['cores']:.2f} | {r['rss_mb']:.0f} ({r['peak_mb']:.0f}) "
            f"| {r['sent']} | {r['tracked']} | {r['dropped']} | {r['behind']} "
            f"| {r['named']} / {r['scenes']} "
            f"| {r['latency_median']:.2f} s ({r['latency_max']:.2f} s) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
