"""The `talking-head` command. Each area adds its subcommands through `<area>/cli.py:register`.

Heavy imports (torch, Piper, Ray) happen inside handlers, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from services.common.errors import TalkingHeadError
from services.common.provenance import package_version

# Areas that contribute subcommands, in the order `--help` lists them.
_AREA_CLIS = (
    "services.tts.cli",
    "services.denoise.cli",
    "services.encoder.cli",
    "services.subjects.cli",
    "services.training.data_cli",
    "services.training.photo_cli",
    "services.training.cli",
    "services.gateway.cli",
    "services.bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talking-head",
        description="Text in, a talking-head video out: TTS → denoise → audio encoder → NeRF renderer → mp4.",
        epilog="Run `talking-head COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"talking-head {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}  # command groups later areas extend
    for name in _AREA_CLIS:
        module = importlib.import_module(name)
        if getattr(module, "EXTENDS", None):
            added = module.register(sub, groups)
        else:
            added = module.register(sub)
        if isinstance(added, argparse._SubParsersAction):
            groups[name.split(".")[1]] = added
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TalkingHeadError as exc:
        print(f"talking-head {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"talking-head {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
