"""`subject prepare` benchmark: seconds of preprocessing per second of video, CPU seconds per
second of video and peak RSS, on the real clips in ../shared/data/real.

Each case runs in its own process (so each has its own peak RSS) and writes its dataset to a
temporary directory that is removed afterwards. Without the real media or the preprocess
extra the benchmark reports `skipped` and why. Goal: ≤ 60 s per minute of video on 2 cores.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.bench.common import header, peak_rss_mb
from services.common.paths import real_media_dir

#: (video under real_media_dir()/video, --size): quick runs only the first.
CASES = (("obama_weekly_address_20s.mp4", 256), ("obama_weekly_address_20s.mp4", 512),
         ("lieu_address_60s_256.mp4", 256))


def _missing() -> str | None:
    videos = real_media_dir() / "video"
    if not all((videos / name).is_file() for name, _ in CASES):
        return f"real media not found: {videos} (../shared/data/real beside the checkout)"
    for module in ("cv2", "mediapipe"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (the preprocess extra; see pyproject.toml)"
    return None


def one(video: str, size: int) -> dict:
    """Prepare one video into a temporary directory: timings and this process's peak RSS."""
    from services.subjects.prepare import PrepareConfig, prepare

    with tempfile.TemporaryDirectory(prefix="th-bench-prepare-") as tmp:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        root = prepare(video, "bench", PrepareConfig(size=size), out=Path(tmp) / "bench", progress=False)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF)
        meta = json.loads((root / "prepare.json").read_text())
    seconds = meta["seconds"]
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {"video": Path(video).name, "size": size, "video_s": seconds, "wall_s": round(wall, 2),
            "s_per_video_s": round(wall / seconds, 3), "s_per_video_min": round(60 * wall / seconds, 1),
            "cpu_s_per_video_s": round(cpu / seconds, 3), "stages_s": meta["timings"],
            "focal": round(meta["focal"], 1), "pose_fit_px": round(meta["reprojection_px"]["median"], 3),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def run(json_path: str | None = None, quick: bool = False) -> dict:
    result = header("prepare")
    why = _missing()
    if why:
        print(f"bench prepare: skipped: {why}", file=sys.stderr)
        result["skipped"] = why
        return result
    result["goal"] = "s_per_video_min <= 60 on 2 cores"
    result["cases"] = []
    for name, size in CASES[:1] if quick else CASES:
        video = str(real_media_dir() / "video" / name)
        out = subprocess.run([sys.executable, "-m", "services.bench.prepare", video, str(size)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"bench prepare {name} --size {size} failed: {out.stderr.strip()[-2000:]}")
        result["cases"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    print(json.dumps(one(sys.argv[1], int(sys.argv[2]))))
