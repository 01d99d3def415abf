"""`talking-head bench --stage STAGE --json PATH`: performance numbers as JSON."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

STAGES = ("tts", "denoise", "encoder", "render", "realtime")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure a stage's speed and memory",
        description="Run a stage's benchmark in this process and print (and optionally save) JSON. "
                    "Ratios inside one run are comparable across machines; absolute figures only "
                    "on the same machine. Results for the record go to BENCHMARKS.md.")
    p.add_argument("--stage", required=True, choices=STAGES, help="which benchmark to run")
    p.add_argument("--json", type=Path, default=None, help="write the result JSON here")
    p.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, not for the record)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"services.bench.{args.stage}")
    result = module.run(json_path=None, quick=args.quick)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0
