"""Every code block of README.md and docs/*.md, run as written, and the output
the docs show checked against the output the commands print.

Blocks are found by sybil's Markdown lexer (fenced code blocks) and run in
order in a fresh folder per document, sharing one Python namespace (as a reader
who runs them top to bottom would):

- ``python`` blocks run in the namespace. Besides what earlier blocks define,
  it holds ``paths`` (the photos of ``photos/``) and ``embeddings`` (their
  faces' SFace embeddings, ``(n, 128)``): the two names the docs leave to the
  reader.
- ``bash`` (``sh``, ``shell``) blocks run in bash (``set -euo pipefail``),
  one script per block, each command in turn, this Python's ``fastface`` first
  on ``PATH``; a ``curl`` command must get JSON that is no error. A ``fastface
  serve`` command runs in the background until the document is done (on a free
  port; later blocks reach it at ``127.0.0.1:8000``'s place).
- ``toml`` blocks are read as ``fastface serve --config`` files, ``json``
  blocks parsed.
- blocks without a language (or ``text``) are shown output or plain text;
  those named in :data:`OUTPUTS` are compared with their command's output.
- a block in any other language fails the test until it is run here or listed
  in :data:`NOT_RUN`.

The names the blocks use (``photo.jpg``, ``group.jpg``, ``photos/``, ...) are
sample photos copied there by ``doc_photos.stage``; paths outside the folder
(``/var/lib/fastface``, ``/etc/fastface``) are replaced by folders in it,
``postgresql://user@db/faces`` by a throw-away server's URL
(``local_postgres``), and a block's
``ray.init()`` joins the Ray that the ``ray_session`` fixture started (two
CPUs at most, no dashboard, stopped after the document).

Nothing is skipped but :data:`NOT_RUN`: a block or a bash command containing
one of its strings, each with the reason (a cluster, the network, a camera or
minutes). Marking a new block:

- it needs a file: add its name to ``doc_photos.PHOTOS`` (or ``stage``);
- it cannot run here: add ``(document, a string only it contains)`` and why to
  :data:`NOT_RUN`. Every entry must still match something, so the list stays
  true.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastface
import numpy as np
import pytest
from doc_photos import stage
from local_ray import local_ray
from sybil import Document, Region
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]

# (document, a string the block or bash command contains): why it is not run.
NOT_RUN = {
    ("README.md", "bash scripts/demo.sh"): "builds the venv, models and Rust core: minutes",
    ("README.md", "bash scripts/test.sh"): "every check of the project: what CI runs, minutes",
    ("README.md", "pip install ."): "builds the models and the Rust core from PyPI: network",
    ("README.md", "bash scripts/wheel.sh"): "the release wheel: minutes (tests/test_wheel.py)",
    ("README.md", "fastface eval lfw"): "needs LFW, a data set not shipped",
    ("README.md", "fastface calibrate --lfw path/to/lfw"): "needs LFW, a data set not shipped",
    ("README.md", "--lfw ../shared/faces/lfw-view1"): "needs LFW, a data set not shipped",
    ("README.md", "fastface bench"): "every benchmark: minutes",
    ("README.md", "fastface watch 0"): "needs a camera",
    ("README.md", "fastface.track(0, gallery, threads=1)"): "needs a camera",
    ("docs/scaling.md", "--ray auto"): "needs a Ray cluster",
    ("docs/serve.md", "pip install 'fastface[serve]'"): "installs from PyPI: network",
    ("docs/serve.md", "server {"): "an nginx configuration: needs nginx and a certificate",
    ("docs/cameras.md", "sudo "): "sets up a Raspberry Pi as root: a user, /opt, /etc",
    ("docs/cameras.md", "[Unit]"): "a systemd unit: needs systemd",
    ("docs/cameras.md", "detectors:"): "Double Take's configuration: needs Double Take",
}

# (document, the first line of a block without a language, or of a "# " comment
# line in a bash block): the command whose output it shows. Shown lines must
# appear in the output in order; a line starting with a string of FREE is
# compared by its words only (times, paths), elsewhere numbers must agree to
# within one unit of their last shown digit.
OUTPUTS = {
    ("README.md", "fastface 0.1.0 demo:"): "fastface demo",
    ("docs/serve.md", "fastface serve: listening on"): "fastface serve --data /var/lib/fastface",
}
FREE = ("sample photos:", "model load", "enrol ", "identify ")

#: Fence languages run as bash scripts.
SHELLS = ("bash", "sh", "shell")

#: curl commands whose answer is an error: a placeholder the reader replaces.
EXPECTED_ERRORS = {"/v1/faces/3f1c...": 404}

#: The longest any block may run (a Ray pool waiting for CPUs never ends).
BLOCK_SECONDS = 240


@dataclass
class Run:
    """One document's run: its folder, namespace, outputs and what was skipped."""

    folder: Path
    namespace: dict[str, Any]
    env: dict[str, str]
    substitutions: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    shown: list[tuple[str, str, str]] = field(default_factory=list)
    ran: int = 0  # blocks run (a bash block: at least one of its commands)
    blocks: int = 0  # blocks with a language
    commands: int = 0  # bash commands run
    background: list[subprocess.Popen[str]] = field(default_factory=list)


def _blocks(document: Document) -> Iterator[Region]:
    lexer = RawFencedCodeBlockLexer(
        info_pattern=re.compile(r"(?P<language>[\w+-]*)[^\n]*$\n", re.MULTILINE),
        mapping={"language": "language", "source": "source"},
    )
    for region in lexer(document):
        region.parsed = region.lexemes["source"]
        region.evaluator = lambda example: None  # run by the test, in order
        yield region


def _not_run(document: str, text: str, used: set[tuple[str, str]]) -> str | None:
    for (name, marker), reason in NOT_RUN.items():
        if name == document and marker in text:
            used.add((name, marker))
            return reason
    return None


def _commands(source: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments and
    blank lines left out."""
    commands, current = [], ""
    for line in source.splitlines():
        current += line
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


def _substituted(text: str, run: Run) -> str:
    for old, new in run.substitutions.items():
        text = text.replace(old, new)
    return text


def _shown_output(document: str, text: str, used: set[tuple[str, str]]) -> str | None:
    """The command whose output ``text`` shows, by :data:`OUTPUTS`."""
    first = text.splitlines()[0] if text.strip() else ""
    for (name, start), command in OUTPUTS.items():
        if name == document and first.startswith(start):
            used.add((name, start))
            return command
    return None


def _run_bash(run: Run, document: str, source: str, line: int, used: set[tuple[str, str]]) -> None:
    for offset, text in enumerate(source.splitlines(), start=1):
        command = _shown_output(document, text.removeprefix("# "), used)
        if text.startswith("# ") and command:
            run.shown.append((command, f"{document}:{line + offset}", text[2:]))
    script = ["set -euo pipefail"]
    started_with = run.commands
    kept = []
    for command in _commands(source):
        reason = _not_run(document, command, used)
        if reason:
            run.skipped.append(f"{document}:{line}: `{command}`: {reason}")
            continue
        if command.startswith("fastface serve ") and "--repair" not in command:
            _start_server(run, command)
            run.commands += 1
            continue
        kept.append(command)
        script += [f"printf '\\n@@command {len(kept) - 1}@@\\n'", _substituted(command, run)]
    if len(kept) or run.commands > started_with:
        run.ran += 1
    if not kept:
        return
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=run.folder,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_SECONDS,
    )
    assert done.returncode == 0, (
        f"{document}:{line}: the bash block failed (exit {done.returncode})\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    parts = re.split(r"\n@@command (\d+)@@\n", "\n" + done.stdout)
    for index, output in zip(parts[1::2], parts[2::2], strict=True):
        command = kept[int(index)]
        run.outputs[command] = output
        if command.startswith("curl "):
            _check_answer(f"{document}:{line}: `{command}`", command, output)
    run.commands += len(kept)


def _check_answer(where: str, command: str, output: str) -> None:
    """A curl command's answer is the service's JSON, an error only where the
    command names a placeholder (:data:`EXPECTED_ERRORS`)."""
    answer = json.loads(output)
    error = answer.get("error") if isinstance(answer, dict) else None
    expected = [status for part, status in EXPECTED_ERRORS.items() if part in command]
    assert (error["status"] if error else None) == (expected[0] if expected else None), (
        f"{where}: {output}"
    )


def _start_server(run: Run, command: str) -> None:
    """A ``fastface serve`` command in the background on a free port; later
    blocks reach it where the docs say 127.0.0.1:8000."""
    free_port = _substituted(command, run).replace("fastface serve", "fastface serve --port 0", 1)
    process = subprocess.Popen(
        ["bash", "-c", f"exec {free_port}"],
        cwd=run.folder,
        env=run.env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    run.background.append(process)
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # all of stderr, so that the server never blocks on it
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 120
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"{command}: not listening after 120 s") from None
        if line is None:
            break
        listening = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if listening:
            run.substitutions["127.0.0.1:8000"] = f"127.0.0.1:{listening[1]}"
            run.outputs[command] = line.replace(listening[1], "8000")
            return
    raise AssertionError(f"{command} exited with {process.wait()}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _timed_out(signum: int, frame: object) -> None:
    raise TimeoutError(f"a block ran for more than {BLOCK_SECONDS} s")


def _run_python(run: Run, path: Path, source: str, line: int) -> None:
    # Padded so that a traceback names the line of the Markdown file.
    code = compile("\n" * line + _substituted(source, run), str(path), "exec")
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.alarm(BLOCK_SECONDS)
    try:
        exec(code, run.namespace)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    run.ran += 1


NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _agrees(shown: str, actual: str) -> bool:
    """Same words; numbers equal to within one unit of the last digit shown
    (the engines agree to 1e-4, not bit for bit), or anything on FREE lines."""
    if NUMBER.split(shown) != NUMBER.split(actual):
        return False
    if shown.startswith(FREE):
        return True
    for want, got in zip(NUMBER.findall(shown), NUMBER.findall(actual), strict=True):
        decimals = len(want.split(".")[1]) if "." in want else 0
        if abs(float(want.replace(",", "")) - float(got.replace(",", ""))) > 1.01 * 10**-decimals:
            return False
    return True


def _check_output(where: str, shown: str, actual: str) -> None:
    """Every shown line appears in the actual output, in order (docs may show
    a part: rows may be left out, never changed)."""
    lines = actual.splitlines()
    at = 0
    for want in shown.splitlines():
        if want.startswith("sample photos:"):
            want = "sample photos:"  # a path relative to where it runs
        while at < len(lines) and not (
            _agrees(want, lines[at]) or (want == "sample photos:" and lines[at].startswith(want))
        ):
            at += 1
        assert at < len(lines), f"{where}: shown line not in the output: {want!r}\n{actual}"
        at += 1


@pytest.fixture
def ray_session() -> Iterator[None]:
    """Ray started for the Ray example and shut down after it: a local Ray of
    two CPUs at most (CI's machines have two), so that the example, which
    sizes its pool from the CPUs, stays as quick on a larger machine."""
    with local_ray(num_cpus=min(2, os.cpu_count() or 1)):
        yield


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _sample_embeddings(folder: Path) -> tuple[list[str], np.ndarray]:
    paths = [str(p.relative_to(folder)) for p in sorted((folder / "photos").glob("*/*.jpg"))]
    faces = fastface.embed_many([folder / p for p in paths])
    rows = [f.embedding for found in faces for f in found if f.embedding is not None]
    return paths, np.stack(rows)


def run_document(
    document: str, folder: Path, substitutions: dict[str, str], used: set[tuple[str, str]]
) -> Run:
    """Runs every block of ``document`` in ``folder`` (made by ``stage``)."""
    stage(folder)
    (folder / "etc" / "fastface").mkdir(parents=True)
    (folder / "etc" / "fastface" / "keys").write_text(f"{secrets.token_urlsafe(32)}\n")
    (folder / "var" / "lib" / "fastface").mkdir(parents=True)
    paths, embeddings = _sample_embeddings(folder)
    run = Run(
        folder,
        {"__name__": "__docs__", "paths": paths, "embeddings": embeddings},
        _environment(),
        {
            "/etc/fastface": str(folder / "etc" / "fastface"),
            "/var/lib/fastface": str(folder / "var" / "lib" / "fastface"),
            **substitutions,
        },
    )
    path = ROOT / document
    parsed = Document.parse(str(path), _blocks)
    try:
        for example in parsed:
            language = example.region.lexemes["language"]
            run.blocks += bool(language)
            source = str(example.parsed)
            line = example.line
            if language in SHELLS:
                _run_bash(run, document, source, line, used)
                continue
            reason = _not_run(document, source, used)
            if reason:
                run.skipped.append(f"{document}:{line}: {language or 'text'} block: {reason}")
            elif language == "python":
                _run_python(run, path, source, line)
            elif language == "toml":
                from fastface.serve.config import read_config_file

                config = folder / f"block-{line}.toml"
                config.write_text(_substituted(source, run))
                read_config_file(str(config))
                run.ran += 1
            elif language == "json":
                json.loads(source)  # a payload shown in the docs must be valid JSON
                run.ran += 1
            elif language in ("", "text"):
                command = _shown_output(document, source, used)
                if command:
                    run.shown.append((command, f"{document}:{line}", source))
                else:
                    run.text.append(f"{document}:{line}")
            else:
                raise AssertionError(
                    f"{document}:{line}: a {language} block: run it here or list it in NOT_RUN"
                )
        for command, where, text in run.shown:
            assert command in run.outputs, f"{where} shows the output of `{command}`, not run"
            _check_output(where, text, run.outputs[command])
    finally:
        for process in run.background:
            _stop(process)
    return run


@pytest.mark.parametrize("document", DOCUMENTS)
def test_document_runs(
    document: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(tmp_path)
    substitutions: dict[str, str] = {}
    stack: list[Callable[[], None]] = []
    code = "\n".join(str(b.parsed) for b in Document.parse(str(ROOT / document), _blocks))
    if "import ray" in code:
        request.getfixturevalue("ray_session")
        # The block's own ray.init() joins the fixture's Ray.
        substitutions["ray.init()"] = "ray.init(ignore_reinit_error=True)"
    if "postgresql://" in code:
        substitutions.update(_postgres(stack))
    used: set[tuple[str, str]] = set()
    try:
        run = run_document(document, tmp_path, substitutions, used)
    finally:
        for stop in reversed(stack):
            stop()
    listed = {key for key in NOT_RUN if key[0] == document} | {
        key for key in OUTPUTS if key[0] == document
    }
    assert listed <= used, f"entries that match no block any more: {sorted(listed - used)}"
    print(
        f"\n{document}: {run.ran} of {run.blocks} code blocks run ({run.commands} bash commands), "
        f"{len(run.shown)} shown outputs checked, "
        f"{len(run.text)} text blocks ({', '.join(run.text)}), {len(run.skipped)} not run:"
    )
    for line in run.skipped:
        print(f"  {line}")


def _postgres(stack: list[Callable[[], None]]) -> dict[str, str]:
    """A throw-away PostgreSQL with pgvector where the docs name one."""
    from local_postgres import LocalPostgres

    server = LocalPostgres()
    server.start()
    stack.append(server.stop)
    return {
        "postgresql://user@db/faces": server.url,
    }
