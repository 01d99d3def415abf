"""Regenerate the committed gRPC stubs from protos/ (run by `make protos`).

Stubs land in services/protos/talkinghead/v1/ with imports rewritten to the
`services.protos` package, so they import without touching sys.path.
Usage: python scripts/gen_protos.py [OUT_DIR]   (default: services/protos)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc  # grpcio-tools 1.62.x: stubs import under protobuf 4.25 and 7.x

    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}", *[str(p) for p in protos]]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for path in sorted(out_dir.rglob("*_pb2*.py*")):
        text = path.read_text()
        text = re.sub(r"^from talkinghead\.v1 import", "from services.protos.talkinghead.v1 import", text, flags=re.M)
        # Message classes' __module__ must be importable: Ray Serve pickles request protos.
        text = re.sub(r"'talkinghead\.v1\.(\w+_pb2)'", r"'services.protos.talkinghead.v1.\1'", text)
        path.write_text(text)
        written.append(path)
    for pkg in [out_dir, out_dir / "talkinghead", out_dir / "talkinghead" / "v1"]:
        init = pkg / "__init__.py"
        if not init.exists():
            init.write_text("")
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "services" / "protos"
    for p in generate(target):
        print(p.relative_to(target))
