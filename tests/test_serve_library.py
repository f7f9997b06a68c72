"""The Face Library page of `fastface serve` in a real headless Chromium (Debian's
chromium and chromedriver, driven by Selenium): log in, add a person from photos
(bad uploads refused with the reason), see a recognition from a camera's MJPEG
stream, name the group of unknown faces and see the next track named, remove a
face. Screenshots go to $FASTFACE_SCREENSHOTS (else the test's folder)."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import cv2
import fastface
import mjpeg
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_serve import KEY, Server
from test_serve_cameras import FPS, STRANGER, door_clip
from video_clips import background, photos


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if chromium is None or not os.path.exists(driver):
        pytest.fail("chromium and chromedriver are not installed (scripts/setup.sh installs them)")
    return chromium, driver


class GatedStream:
    """An MJPEG server on 127.0.0.1 that plays the clip once per :meth:`play`;
    a connection waits for its turn."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1] for f in frames]
        self.turns = threading.Semaphore(0)
        self.closing = threading.Event()
        self.played = 0
        stream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                while not stream.turns.acquire(timeout=0.2):
                    if stream.closing.is_set():
                        return
                mjpeg.begin(self)
                began = time.time()
                try:
                    for index, data in enumerate(stream.jpegs):
                        mjpeg.write_frame(self, data)
                        time.sleep(max(0.0, began + (index + 1) / FPS - time.time()))
                    mjpeg.end(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                stream.played += 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server, self.url = mjpeg.serve(Handler)

    def play(self) -> None:
        self.turns.release()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    yield chrome
    chrome.quit()


def files_to_upload(folder: Path) -> dict[str, Path]:
    """Ben's three photos with the largest faces, and three bad uploads."""
    width = {p: fastface.detect(p)[0].box[2] - fastface.detect(p)[0].box[0]
             for p in photos("train", "ben_afflek")}  # fmt: skip
    largest = sorted(width, key=width.__getitem__, reverse=True)[:3]
    chosen = {f"ben{i}.jpg": p for i, p in enumerate(largest)}
    out = {}
    for name, source in chosen.items():
        out[name] = folder / name
        shutil.copy(source, out[name])
    out["notes.jpg"] = folder / "notes.jpg"
    out["notes.jpg"].write_text("this is not a photo\n")
    out["wall.png"] = folder / "wall.png"
    cv2.imwrite(str(out["wall.png"]), background(320, 240))
    # The largest face shrunk to 24 px wide: still found, too small to enrol.
    scale = 24 / width[largest[0]]
    out["tiny.jpg"] = folder / "tiny.jpg"
    tiny = cv2.resize(cv2.imread(str(largest[0])), None, fx=scale, fy=scale)
    cv2.imwrite(str(out["tiny.jpg"]), tiny)
    return out


def test_the_face_library_in_chromium(browser: webdriver.Chrome, tmp_path: Path) -> None:
    shots = Path(os.environ.get("FASTFACE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    stream = GatedStream(door_clip().frames)
    keys = tmp_path / "keys"
    keys.write_text(KEY + "\n")
    server = Server(
        "--api-key-file", keys, "--data", tmp_path / "data", "--camera", f"hall={stream.url}"
    )
    wait = WebDriverWait(browser, 60, poll_frequency=0.25)

    def shown(selector: str) -> Any:
        return browser.find_elements(By.CSS_SELECTOR, selector)

    try:
        browser.get(server.url + "/")
        # A wrong key is refused; the right one opens the library.
        wait.until(lambda _: browser.find_element(By.ID, "login").is_displayed())
        browser.find_element(By.ID, "login-key").send_keys("not-the-key-at-all-0000")
        browser.find_element(By.ID, "login-button").click()
        wait.until(lambda _: "not one of" in browser.find_element(By.ID, "login-error").text)
        assert not browser.find_element(By.ID, "library").is_displayed()
        browser.save_screenshot(str(shots / "1-login-refused.png"))
        browser.find_element(By.ID, "login-key").clear()
        browser.find_element(By.ID, "login-key").send_keys(KEY)
        browser.find_element(By.ID, "login-button").click()
        wait.until(lambda _: browser.find_element(By.ID, "library").is_displayed())
        assert KEY not in browser.page_source

        # Add Ben from photos; the bad uploads are refused with their reasons.
        uploads = files_to_upload(tmp_path)
        browser.find_element(By.ID, "add-name").send_keys("ben_afflek")
        browser.find_element(By.ID, "add-files").send_keys("\n".join(map(str, uploads.values())))
        browser.find_element(By.ID, "add-button").click()
        wait.until(lambda _: len(shown("#add-results li.ok, #add-results li.refused")) == 6)
        results = {li.text.split(":")[0]: li for li in shown("#add-results li")}
        for name in ("ben0.jpg", "ben1.jpg", "ben2.jpg"):
            assert results[name].get_attribute("class") == "ok", results[name].text
        assert (
            "not a supported image" in results["notes.jpg"].text
            or "image" in results["notes.jpg"].text.lower()
        )
        assert "no face" in results["wall.png"].text
        assert "too small" in results["tiny.jpg"].text
        wait.until(lambda _: "3 faces" in browser.find_element(By.ID, "people").text)
        browser.save_screenshot(str(shots / "2-person-added.png"))

        # The camera sees Ben (named) and a stranger (unknown) walk by.
        stream.play()
        wait.until(lambda _: shown("#cameras img") and browser.execute_script(
            "return document.querySelector('#cameras img').naturalWidth") > 0)  # fmt: skip
        browser.save_screenshot(str(shots / "3-live.png"))
        wait.until(lambda _: shown('#recent li[data-label="ben_afflek"]'))
        wait.until(lambda _: shown("#unknown .group"))
        browser.save_screenshot(str(shots / "4-recognised-and-unknown.png"))

        # The stranger's group is named in one action; the next pass names her.
        group = shown("#unknown .group")[0]
        group.find_element(By.TAG_NAME, "input").send_keys(STRANGER)
        group.find_element(By.TAG_NAME, "button").click()
        wait.until(lambda _: f"{STRANGER}" in browser.find_element(By.ID, "people").text)
        named_before = len(shown(f'#recent li[data-label="{STRANGER}"]'))
        stream.play()
        wait.until(lambda _: len(shown(f'#recent li[data-label="{STRANGER}"]')) > named_before)
        browser.save_screenshot(str(shots / "5-named-next-time.png"))

        # "Not this person": one of Ben's faces removed.
        browser.find_element(By.CSS_SELECTOR, '.person[data-subject="ben_afflek"]').click()
        wait.until(lambda _: len(shown("#person-faces .face")) == 3)
        shown("#person-faces .face button.remove")[0].click()
        wait.until(lambda _: len(shown("#person-faces .face")) == 2)
        assert (
            "2 faces"
            in browser.find_element(By.CSS_SELECTOR, '.person[data-subject="ben_afflek"]').text
        )
        browser.save_screenshot(str(shots / "6-face-removed.png"))
        # No failure but the expected ones (the login check, the refused uploads).
        failures = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert all(re.search(r"status of (401|422)", m) for m in failures), failures
    finally:
        browser.get("about:blank")  # the live view's connection closes
        stream.close()
        server.stop()
