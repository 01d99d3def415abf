"""`eval --dataset` end to end on real footage (the first 11 s of the 256² clip in
../shared/data/real; skipped when it or MediaPipe is absent): prepare → a tiny subject →
scores on the held-out last 1/11, beside the static baseline; mismatched datasets are one
clear error."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest

from services.cli import main
from services.subjects.layout import load_dataset

SECONDS, FPS = 11.0, 25
N = int(SECONDS * FPS)


@pytest.fixture(scope="module")
def home(real_clip, clip_writer, preprocess_extra, tmp_path_factory):
    """$TALKING_HEAD_HOME with the prepared dataset `lieu11` and a tiny subject trained on it
    (seconds of training: it renders a blur, which FaceMesh may not take for a face)."""
    from services.common.subject_store import LocalSubjectStore
    from services.subjects.prepare import prepare
    from services.training.presets import preset
    from services.training.subject import train_subject

    root = tmp_path_factory.mktemp("home")
    frames, audio, fps = real_clip(SECONDS)
    clip = clip_writer(root / "lieu11.mp4", frames, fps, audio)
    dataset = prepare(clip, "lieu11", out=root / "datasets" / "lieu11", progress=False)
    recipe = preset("tiny")
    recipe = replace(recipe, name="tiny-test", train=replace(recipe.train, head_iters=30, lips_iters=4, torso_iters=4,
                                                             eval_every=10_000, audio_pretrain_steps=4))
    # csfm, as the cpu preset: eval must feed the content model's frames the way training did
    bundle = train_subject(dataset, "lieu-tiny", preset=recipe, progress=False, encoder="csfm")
    assert bundle.manifest["audio_encoder"]["config"]["variant"] == "csfm"
    LocalSubjectStore(root / "subjects", bundled=None).save(bundle)
    return root


@pytest.fixture(scope="module")
def run(home, tmp_path_factory) -> tuple[dict, dict]:
    """`talking-head eval --subject lieu-tiny --dataset lieu11 --json …`: (the JSON file, stdout)."""
    out = tmp_path_factory.mktemp("eval") / "eval.json"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setenv("TALKING_HEAD_HOME", str(home))
        assert main(["eval", "--subject", "lieu-tiny", "--dataset", "lieu11", "--json", str(out)]) == 0
    return json.loads(out.read_text()), json.loads(printed.getvalue())


@pytest.fixture(scope="module")
def result(run) -> dict:
    return run[0]


def test_held_out_frames_are_the_last_eleventh(result, home) -> None:
    ds = load_dataset(home / "datasets" / "lieu11")
    n_val = N - int(N * 10 / 11)
    held = result["held_out"]
    assert result["mode"] == "dataset" and result["dataset_frames"] == N and result["target"] == "gt_imgs"
    assert held["frames"] == n_val and held["img_ids"] == [N - n_val, N - 1]
    assert result["per_frame"]["img_id"] == list(range(N - n_val, N)) == ds.frame_ids[ds.val].tolist()
    assert held["seconds"] == pytest.approx([(N - n_val) / FPS, N / FPS])
    assert result["baseline"].startswith("static: training frame img_id 0")


def test_scores_are_finite_beside_the_static_baseline(result) -> None:
    m = result["metrics"]
    assert set(m) == {"psnr", "psnr_head", "ssim", "lmd", "lmd_shape", "mouth_corr", "face_found"}
    for side in ("subject", "static"):
        assert 5 < m["psnr"][side] < 60 and 0 < m["ssim"][side] <= 1
        assert m["psnr_head"][side] >= m["psnr"][side]  # the real torso pixels can only help
        assert m["face_found"][side] is not None
    # the real first training frame is a face: the baseline's landmark scores exist
    assert m["face_found"]["static"] > 0.9 and math.isfinite(m["lmd"]["static"]) and m["lmd"]["static"] > 0
    assert m["mouth_corr"]["static"] is None  # a mouth that never moves has no correlation
    # a few dozen steps draw no face FaceMesh trusts on every frame: scores exist where it does
    for key in ("lmd", "lmd_shape", "mouth_corr"):
        assert key in m and (m[key]["subject"] is None or math.isfinite(m[key]["subject"]))
    assert result["lpips"] is None and any("lpips" in n for n in result["notes"])
    assert len(result["goals"]) == 3 and all(v in (True, False, None) for v in result["goals"].values())
    per = result["per_frame"]
    n_val = result["held_out"]["frames"]
    for side in ("subject", "static"):
        assert len(per[side]["psnr"]) == n_val and all(math.isfinite(v) for v in per[side]["psnr"])
        assert np.mean(per[side]["psnr"]) == pytest.approx(m["psnr"][side], abs=1e-3)


def test_stdout_is_the_result_without_per_frame_scores(run) -> None:
    full, printed = run
    assert "per_frame" not in printed and printed == {k: v for k, v in full.items() if k != "per_frame"}


def _copy(home, name: str):
    dst = home / "datasets" / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(home / "datasets" / "lieu11", dst)
    return dst


def _edit_transforms(root, edit) -> None:
    for split in ("train", "val"):
        path = root / f"transforms_{split}.json"
        doc = json.loads(path.read_text())
        edit(split, doc)
        path.write_text(json.dumps(doc))


def _frameless(split: str, doc: dict) -> None:
    if split == "val":
        doc["frames"] = doc["frames"][:-1]


def _other_camera(split: str, doc: dict) -> None:
    doc["focal_len"] *= 1.1


@pytest.mark.parametrize("case, expect", [
    ("missing", "dataset not found"),
    ("texts", "--texts is for the oracle eval"),
    ("frames", "was trained on a 275-frame dataset"),
    ("camera", "trained on a dataset with another camera"),
    ("size", "renders 256x256 but dataset"),
])
def test_a_mismatched_dataset_is_one_line_and_exit_2(case, expect, home, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TALKING_HEAD_HOME", str(home))
    args = ["eval", "--subject", "lieu-tiny", "--dataset"]
    if case == "missing":
        args.append("no-such-dataset")
    elif case == "texts":
        texts = tmp_path / "t.txt"
        texts.write_text("Hello.\n")
        args += ["lieu11", "--texts", str(texts)]
    elif case in ("frames", "camera"):
        _edit_transforms(_copy(home, f"lieu-{case}"), _frameless if case == "frames" else _other_camera)
        args.append(f"lieu-{case}")
    else:
        from services.subjects.synth import SynthConfig, synth
        from services.training.speech import bundled_voice

        synth("small", SynthConfig(minutes=0.02, size=32, video=False), out=tmp_path / "small", progress=False,
              speak=bundled_voice())
        args.append(str(tmp_path / "small"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and len(err.splitlines()) == 1, err

