"""A contact sheet of an mp4: N evenly spaced frames in a grid, each captioned with its time.

    .venv/bin/python scripts/contact_sheet.py out/a.mp4 docs/a-sheet.png [--frames 12] [--cols 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw


def frames_of(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate or 25)
        return [f.to_ndarray(format="rgb24") for f in c.decode(stream)], fps


def contact_sheet(path: Path, out: Path, n: int = 12, cols: int = 6) -> Path:
    frames, fps = frames_of(path)
    if not frames:
        raise SystemExit(f"{path}: no video frames")
    picks = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    h, w = frames[0].shape[:2]
    rows = -(-len(picks) // cols)
    sheet = Image.new("RGB", (cols * w, rows * (h + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(picks):
        x, y = (k % cols) * w, (k // cols) * (h + 16)
        sheet.paste(Image.fromarray(frames[i]), (x, y + 16))
        draw.text((x + 4, y + 2), f"frame {i}  {i / fps:.2f} s", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mp4", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--cols", type=int, default=6)
    a = p.parse_args()
    print(contact_sheet(a.mp4, a.out, a.frames, a.cols))


if __name__ == "__main__":
    main()
