"""`talking-head bench --stage STAGE --json PATH`: performance numbers as JSON."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from services.common.corpus import TEXT_SOURCES
from services.common.errors import InvalidInput

STAGES = ("tts", "denoise", "encoder", "render", "corpus", "gpu", "prepare", "realtime")
#: stages that speak held-out sentences, and so take --texts
TEXT_STAGES = ("tts", "denoise", "encoder")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure a stage's speed and memory",
        description="Run a stage's benchmark in this process and print (and optionally save) JSON. "
                    "Ratios inside one run are comparable across machines; absolute figures only "
                    "on the same machine. Results for the record go to BENCHMARKS.md.")
    p.add_argument("--stage", required=True, choices=STAGES, help="which benchmark to run")
    p.add_argument("--json", type=Path, default=None, help="write the result JSON here")
    p.add_argument("--quick", action="store_true", help="smaller inputs (a smoke run, not for the record)")
    p.add_argument("--grpc", action="store_true",
                   help="realtime stage: also stream over gRPC from a local `talking-head serve` (1 and 2 streams)")
    p.add_argument("--texts", choices=TEXT_SOURCES, default=None,
                   help="held-out sentences of the tts, denoise and encoder stages: natural (default) or "
                        "templates (the old grammar, for comparing with earlier figures)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"services.bench.{args.stage}")
    if args.texts is not None and args.stage not in TEXT_STAGES:
        raise InvalidInput(f"--texts applies to the {', '.join(TEXT_STAGES)} stages, not {args.stage}")
    if args.grpc and args.stage != "realtime":
        raise InvalidInput(f"--grpc applies to the realtime stage, not {args.stage}")
    extra = {"texts": args.texts} if args.texts is not None else {}
    if args.grpc:
        extra["grpc"] = True
    result = module.run(json_path=None, quick=args.quick, **extra)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0
