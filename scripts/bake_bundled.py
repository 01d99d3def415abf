"""Bake the default pose walk into a subject that ships with the package (maintainers: after
retraining the bundled demo). `python scripts/bake_bundled.py demo [--seconds 20]`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.common.bundle import MANIFEST  # noqa: E402
from services.common.subject_store import BUNDLED_DIR, LocalSubjectStore  # noqa: E402
from services.renderer.pose_bake import DEFAULT_SECONDS  # noqa: E402
from services.training.bundle import bake_with_bar  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name", help="a subject under services/subjects/bundled")
    ap.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    args = ap.parse_args()
    target = BUNDLED_DIR / args.name
    bundle = LocalSubjectStore(root=BUNDLED_DIR, bundled=None).load(args.name)
    baked = bake_with_bar(bundle, args.seconds)
    for name in os.listdir(target):
        if name not in baked.blobs and name != MANIFEST:
            os.unlink(target / name)
    for name, data in baked.blobs.items():
        (target / name).write_bytes(data)
    (target / MANIFEST).write_bytes(baked.manifest_bytes)
    b = baked.manifest["baked_poses"]
    print(f"{target}: {b['frames']} poses ({b['seconds']} s), {len(baked.blobs['poses.safetensors']) / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
