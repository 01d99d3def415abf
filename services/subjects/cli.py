"""`talking-head subject`: the command group that the subject subcommands join."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the `subject` command (top level) and return its subparsers, so the areas that
    make datasets and subjects (synth, train, list, rm, push, pull) add to the same group."""
    subject = subparsers.add_parser(
        "subject", help="make datasets and train, list or remove subjects",
        description="Subjects: ER-NeRF-layout datasets and the trained talking heads made from them.")
    group = subject.add_subparsers(dest="subject_command", metavar="SUBCOMMAND")

    def _usage(args: argparse.Namespace) -> int:
        subject.print_help()
        return 2

    subject.set_defaults(func=_usage)
    return group
