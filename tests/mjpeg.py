"""MJPEG over HTTP (multipart/x-mixed-replace, as IP cameras serve it) for the
tests' stream servers on 127.0.0.1: each test's handler decides what it plays
and when; these write the stream and start the server."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def begin(handler: BaseHTTPRequestHandler) -> None:
    """The response's status and headers."""
    handler.send_response(200)
    handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
    handler.end_headers()


def write_frame(handler: BaseHTTPRequestHandler, jpeg: Any) -> None:
    """One JPEG (bytes or OpenCV's encoded array) as one part of the stream."""
    data = bytes(jpeg)
    handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
    handler.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode())
    handler.wfile.write(data + b"\r\n")
    handler.wfile.flush()


def end(handler: BaseHTTPRequestHandler) -> None:
    """The closing boundary: the stream ended, not cut."""
    handler.wfile.write(b"--frame--\r\n")


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """``handler`` served on a free port of 127.0.0.1 from a daemon thread; the
    server and the stream's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
