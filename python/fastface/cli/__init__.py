"""The ``fastface`` command line.

    fastface demo                               the sample people, enrolled and identified
    fastface enroll PEOPLE/ -o people.gallery   a folder per person (or --csv path,label)
    fastface identify people.gallery photo.jpg [--json] [--annotate out/]
    fastface verify a.jpg b.jpg                 same person or not
    fastface eval lfw LFW/ [--pairs pairs.txt] [--plot roc.png]
    fastface calibrate --lfw LFW/ --target-accuracy   store a threshold for the API
    fastface bench                              the benchmarks in benches/, summarised
    fastface serve --data DIR                   face recognition over HTTP (docs/serve.md)
    fastface cluster PHOTOS/ [--out DIR] [--json] [--sheet sheet.png]   faces grouped by person
    fastface watch VIDEO|CAMERA|URL --gallery G  faces tracked and named, JSON lines [--annotate out.mp4]
    fastface embed PHOTOS/ --out faces.parquet  every face as Parquet rows [--ray local|ADDRESS]
    fastface models                             bundled models: source, licence, accuracy

Errors print one line, ``fastface: error: ...``, on stderr and exit with status 1
(2 for wrong arguments). Progress goes to stderr; results to stdout.

Each command is a module with ``add_arguments(parser)`` and ``run(args) -> int``;
adding one is a line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import FastfaceError
from ..serve import cli as serve
from . import bench, calibrate, cluster, demo, embed, enroll, identify, info, models, verify, watch
from . import eval as eval_
from ._output import CliError, one_line


class CommandModule(Protocol):
    """What a command's module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


@dataclass(frozen=True)
class Command:
    name: str
    module: CommandModule
    help: str
    aliases: tuple[str, ...] = ()


COMMANDS = [
    Command("enroll", enroll, "build a gallery from a folder per person (or a CSV of path,label)", ("enrol",)),
    Command("identify", identify, "match every face of each image against a gallery"),
    Command("verify", verify, "whether two photos show the same person"),
    Command("eval", eval_, "measure verification accuracy on labelled pairs"),
    Command("calibrate", calibrate, "choose the threshold on labelled pairs and store it for the API"),
    Command("demo", demo, "enrol the sample people and identify their other photos"),
    Command("bench", bench, "run the benchmarks in benches/ and summarise them"),
    Command("serve", serve, "an HTTP face-recognition service (fastface[serve])"),
    Command("cluster", cluster, "group the faces of a folder of photos by person (table, folders, contact sheet)"),
    Command("watch", watch, "faces tracked and named through a video, camera or stream, as JSON events"),
    Command("embed", embed, "every face of many photos as Parquet rows (here or on Ray)"),
    Command("info", info, "engine in use and why, instruction sets, threads, models"),
    Command("models", models, "every bundled model: source, sha256, licence, training data, accuracy"),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastface",
        description="Face recognition: enrol people, identify and verify faces, measure accuracy.",
    )
    parser.add_argument("--version", action=info.VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, aliases=list(command.aliases), help=command.help)
        command.module.add_arguments(sub)
        sub.set_defaults(func=command.module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        print("fastface: interrupted", file=sys.stderr)
        return 130
    except (CliError, FastfaceError, OSError, ValueError) as exc:
        print(f"fastface: error: {one_line(exc)}", file=sys.stderr)
        return 1


__all__ = ["COMMANDS", "Command", "CommandModule", "build_parser", "main"]
