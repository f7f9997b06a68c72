"""`fastface serve` attacked as a hostile client would, on 127.0.0.1: images that
lie about their size, enrolments of huge photos, concurrent bombs, deep JSON,
look-alike names, slow headers, dropped uploads, Host-header redirects, keys in
URLs. The real server in a subprocess; its peak memory is read from
``/proc/<pid>/status`` (VmHWM, reset through ``clear_refs`` before each
measurement), and a watchdog kills it if it ever takes more than twice its
budget, so a regression fails the test without taking the machine."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from fastface._models import SAMPLES_DIR
from lying_images import LYING
from test_serve import Server, assert_error

MIB = 1 << 20
BUDGET = 1100 * MIB
SECRET = "query-string-secret-0123456789"


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class Watched(Server):
    """A server whose resident memory is watched: past ``kill_above`` bytes it is
    killed (the test then fails instead of the machine swapping)."""

    def __init__(self, *flags: str | Path, kill_above: int) -> None:
        super().__init__(*flags)
        self.killed_at = 0
        stop = self._stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.02):
                try:
                    rss = status_kib(self.process.pid, "VmRSS") * 1024
                except (OSError, AssertionError):
                    return
                if rss > kill_above:
                    self.killed_at = rss
                    self.process.send_signal(signal.SIGKILL)
                    return

        threading.Thread(target=watch, daemon=True).start()

    def reset_peak(self) -> None:
        with open(f"/proc/{self.process.pid}/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS

    def peak(self) -> int:
        assert not self.killed_at, f"the server was killed at {self.killed_at / MIB:,.0f} MiB"
        return status_kib(self.process.pid, "VmHWM") * 1024

    def stop(self) -> None:
        self._stop.set()
        super().stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    folder = tmp_path_factory.mktemp("attacked")
    running = Watched(
        "--data",
        folder / "data",
        "--memory-budget",
        BUDGET,
        "--threads",
        4,
        "--header-timeout",
        1,
        # Big photos wait their turn for the budget: on a busy machine that can
        # take long, and a 503 for time would make the test depend on speed.
        "--timeout",
        600,
        kill_above=2 * BUDGET,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Watched) -> Iterator[httpx.Client]:
    with server.client(key=None) as c:
        yield c


def encoded(ext: str, image: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


# ----------------------------------------------------------------- images


@pytest.mark.parametrize("name", sorted(LYING))
def test_a_lying_image_is_refused_with_no_large_allocation(
    server: Watched, client: httpx.Client, name: str
) -> None:
    data, pixels = LYING[name]
    server.reset_peak()
    before = status_kib(server.process.pid, "VmRSS") * 1024
    answer = client.post("/v1/detect", files={"image": data})
    if pixels is None:
        assert "does not decode" in assert_error(answer, 422)
    else:
        assert f"{pixels:,} pixels" in assert_error(answer, 413)
    grown = server.peak() - before
    assert grown < 48 * MIB, f"{name}: the server's peak grew {grown / MIB:,.0f} MiB"


def test_huge_photos_stay_within_the_memory_budget(server: Watched, client: httpx.Client) -> None:
    """16 and 32 blank 7000x7000 PNGs (150 KB each, 49 M pixels: inside every
    limit) in one enrolment; 6 photos of 36 M pixels with a face each; and 4
    clients sending 7000x7000 photos at once: the process never passes its
    budget, and each answer is the right one."""
    blank = encoded(".png", np.zeros((7000, 7000, 3), np.uint8))
    photo = cv2.imread(str(sorted((SAMPLES_DIR / "train" / "elton_john").iterdir())[0]))
    canvas = np.full((6000, 6000, 3), 200, np.uint8)
    scale = 1500 / photo.shape[0]
    face = cv2.resize(photo, None, fx=scale, fy=scale)
    canvas[: face.shape[0], : face.shape[1]] = face
    big_face = encoded(".jpg", canvas, cv2.IMWRITE_JPEG_QUALITY, 70)

    server.reset_peak()
    for count in (16, 32):
        answer = client.post("/v1/subjects/blank/faces", files=[("image", blank)] * count)
        assert "no face found in photo 1" in assert_error(answer, 422)
    enrolled = client.post("/v1/subjects/big/faces", files=[("image", big_face)] * 6)
    assert enrolled.status_code == 201, enrolled.text
    assert len(enrolled.json()["faces"]) == 6

    answers: list[httpx.Response] = []

    def detect() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            answers.append(c.post("/v1/detect", files={"image": blank}))

    clients = [threading.Thread(target=detect) for _ in range(4)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 4, [a.text for a in answers]
    peak = server.peak()
    # Every reservation is given back (a body's, just after its answer is sent).
    released = ('fastface_memory_reserved_bytes{pool="images"} 0.0', 'pool="bodies"} 0.0')
    deadline = time.monotonic() + 30
    while not all(r in (metrics := client.get("/metrics").text) for r in released):
        assert time.monotonic() < deadline, f"a reservation leaked:\n{metrics}"
        time.sleep(0.05)
    assert 'fastface_memory_capacity_bytes{pool="images"}' in metrics
    assert peak <= BUDGET, f"peak {peak / MIB:,.0f} MiB over the budget of {BUDGET / MIB:,.0f}"
    names = {s["subject"] for s in client.get("/v1/subjects").json()["subjects"]}
    assert "blank" not in names


def test_an_image_that_cannot_fit_the_budget_is_refused_at_once(
    server: Watched, client: httpx.Client
) -> None:
    """A 16-bit RGBA PNG takes 8 bytes a pixel to decode, 11 with the RGB
    result: 36 M pixels, within the pixel limit, need 396 MB, more than this
    server's whole image pool (345 MiB of its 1,100 MiB budget): 413 at once,
    nothing decoded."""
    deep = encoded(".png", np.zeros((6000, 6000, 4), np.uint16))
    server.reset_peak()
    before = status_kib(server.process.pid, "VmRSS") * 1024
    answer = client.post("/v1/detect", files={"image": deep})
    assert "--memory-budget" in assert_error(answer, 413)
    assert server.peak() - before < 48 * MIB


# ----------------------------------------------------------------- bodies


def test_deep_or_huge_json_is_400_on_every_endpoint(server: Watched, client: httpx.Client) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    deeper = b'{"image":' * 5000 + b'"x"' + b"}" * 5000
    many = b'{"image": [' + b",".join([b'""'] * 100_000) + b"]}"
    json_type = {"content-type": "application/json"}
    for path in (
        "/v1/detect",
        "/v1/embed",
        "/v1/verify",
        "/v1/identify",
        "/v1/subjects/deep/faces",
    ):
        for body in (deep, deeper, many):
            answer = client.post(path, content=body, headers=json_type)
            try:
                assert_error(answer, 400)
            except AssertionError as err:
                raise AssertionError(f"{path} {body[:12]!r}: {err}") from None
    for method, path in (
        ("GET", "/v1/subjects"),
        ("GET", "/v1/subjects/deep"),
        ("DELETE", "/v1/subjects/deep"),
        ("DELETE", "/v1/faces/0123"),
        ("GET", "/healthz"),
    ):
        answer = client.request(method, path, content=deep, headers=json_type)
        assert answer.status_code < 500, (method, path, answer.text)
    assert "Traceback" not in "".join(server.log)


def test_a_client_dropping_mid_upload_is_one_log_line(server: Watched) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    before = len(server.log)
    for kind in ("image/jpeg", "multipart/form-data; boundary=xyz"):
        with socket.create_connection((host, int(port))) as sock:
            head = (
                f"POST /v1/detect HTTP/1.1\r\nHost: {host}\r\nContent-Type: {kind}\r\n"
                "Content-Length: 100000\r\n\r\n"
            )
            part = (
                b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n"
            )
            sock.sendall(head.encode() + part + b"\xff" * 1000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = [x for x in server.log[before:] if "disconnected" in x]
        if len(lines) >= 2:
            break
        time.sleep(0.05)
    new = "".join(server.log[before:])
    assert len([x for x in server.log[before:] if "disconnected" in x]) == 2, new
    assert "Traceback" not in new and "ERROR" not in new, new


# ----------------------------------------------------------------- names


def test_look_alike_subject_names_are_refused(client: httpx.Client) -> None:
    photo = sorted((SAMPLES_DIR / "train" / "madonna").iterdir())[0].read_bytes()
    for name in (
        "ann\u0085",  # NEXT LINE, a control character
        "a\u200bnn",  # ZERO WIDTH SPACE
        "ann\u202e",  # RIGHT-TO-LEFT OVERRIDE
        "\u2066ann",  # LEFT-TO-RIGHT ISOLATE
        "ann\u2028x",  # LINE SEPARATOR
        " ann",
        "ann ",
        "ann\u00a0",
        "\ufeffann",
    ):
        answer = client.post(f"/v1/subjects/{name}/faces", files={"image": photo})
        try:
            assert_error(answer, 422)
        except AssertionError as err:
            raise AssertionError(f"{name!r}: {err}") from None
    # One name however its accents are spelled (NFC).
    decomposed, composed = "Zoe\u0301", "Zo\u00e9"
    answer = client.post(f"/v1/subjects/{decomposed}/faces", files={"image": photo})
    assert answer.status_code == 201, answer.text
    assert answer.json()["subject"] == composed
    assert client.get(f"/v1/subjects/{decomposed}").json()["subject"] == composed
    names = [s["subject"] for s in client.get("/v1/subjects").json()["subjects"]]
    assert composed in names and decomposed not in names
    assert client.delete(f"/v1/subjects/{composed}").json()["removed"] == 1


# ----------------------------------------------------------------- connections


def test_slow_header_connections_are_closed(server: Watched, client: httpx.Client) -> None:
    """50 connections that send half their headers and wait: each is closed
    (the server runs with --header-timeout 1), and the service keeps answering."""
    host, port = server.url.removeprefix("http://").split(":")
    socks = []
    for _ in range(50):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode())
        socks.append(sock)
    try:
        closed = 0
        deadline = time.monotonic() + 30  # for all of them together
        for sock in socks:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                closed += sock.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass  # still open
        assert closed == 50, f"only {closed} of 50 slow connections were closed"
    finally:
        for sock in socks:
            sock.close()
    assert client.get("/healthz").status_code == 200


def test_no_redirect_is_built_from_the_host_header(client: httpx.Client) -> None:
    answer = client.get("/v1/subjects/", headers={"Host": "evil.example"})
    assert "location" not in answer.headers
    assert_error(answer, 404)


def test_keys_in_a_query_string_never_reach_the_log(server: Watched, client: httpx.Client) -> None:
    client.get("/healthz", params={"api_key": SECRET})
    client.get("/v1/subjects", params={"key": SECRET})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("/v1/subjects" in x for x in server.log):
        time.sleep(0.05)
    log = "".join(server.log)
    assert "/v1/subjects?..." in log, log[-2000:]
    assert SECRET not in log


def test_connections_beyond_the_cap_answer_503(tmp_path: Path) -> None:
    capped = Server("--data", tmp_path / "data", "--max-connections", 4)
    host, port = capped.url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(4)]
    try:
        with capped.client(key=None) as c:
            assert "connections" in assert_error(c.get("/v1/subjects"), 503)
        for sock in idle:
            sock.close()
        with capped.client(key=None) as c:  # once they are gone, served again
            deadline = time.monotonic() + 30
            while (answer := c.get("/v1/subjects")).status_code == 503:
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.05)
            assert answer.status_code == 200
    finally:
        for sock in idle:
            sock.close()
        capped.stop()


# ----------------------------------------------------------------- the budget itself


def test_the_budget_serves_first_come_first_and_refuses_what_cannot_fit() -> None:
    from fastface.serve.budget import BudgetExceededError, BusyError, Pool

    pool = Pool("decoded images", 10)
    pool.acquire(8, timeout=1)
    order: list[str] = []
    waiting = threading.Event()

    def big() -> None:
        waiting.set()
        pool.acquire(5, timeout=60)
        order.append("big")

    waiter = threading.Thread(target=big)
    waiter.start()
    waiting.wait()
    while not pool._queue:  # the big one is queued
        time.sleep(0.001)
    assert not pool.try_acquire(1), "a small request must not overtake a waiting one"
    with pytest.raises(BusyError, match="retry"):
        pool.acquire(1, timeout=0.05)  # behind the big one, and out of time
    pool.release(8)
    waiter.join(60)
    assert order == ["big"] and pool.used == 5
    with pytest.raises(BudgetExceededError, match="--memory-budget"):
        pool.acquire(11, timeout=60)
    pool.release(5)
    assert pool.used == 0


def test_a_budget_too_small_for_the_limits_is_refused_at_start(tmp_path: Path) -> None:
    from fastface.serve.config import ServeConfig

    with pytest.raises(ValueError, match="too small for max_pixels"):
        ServeConfig(memory_budget=800 * MIB).check()
    with pytest.raises(ValueError, match="more than the"):
        ServeConfig(memory_budget=600 * MIB).check()
    ServeConfig(memory_budget=800 * MIB, max_pixels=10_000_000).check()
