"""The photo head proxy on scikit-image's astronaut (a public-domain portrait that ships
with the package): the rest pose is the photo, the mouth opens with the jaw, lids close,
the head turns, frames become a valid dataset; bad photos are one clear error each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.common.errors import InvalidInput
from services.common.types import AudioClip, PhonemeTiming, Speech

SIZE = 128


@pytest.fixture(scope="module")
def astronaut(preprocess_extra) -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="needs scikit-image (its astronaut photo)")
    return data.astronaut()


@pytest.fixture(scope="module")
def head(astronaut):
    from services.subjects.photo.dataset import photo_head
    from services.subjects.photo.face import find_face

    return photo_head(find_face(astronaut, "astronaut.png", SIZE))


def _speech() -> Speech:
    labels = [("sil", 0.2), ("h", 0.06), ("ɑ", 0.2), ("m", 0.08), ("u", 0.16), ("sil", 0.3)]
    timings, t = [], 0.0
    for label, dur in labels:
        timings.append(PhonemeTiming(label, t, t + dur))
        t += dur
    return Speech(AudioClip(np.zeros(int(t * 22050), np.float32), 22050), timings, "hamu", "en", "test")


def _face_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    err = ((a.astype(np.float64) - b.astype(np.float64)) ** 2)[mask].mean()
    return float(10 * np.log10(255 ** 2 / max(err, 1e-9)))


def _inner_gap(frames: np.ndarray) -> np.ndarray:
    """FaceMesh's inner-lip gap (px) on each frame."""
    from services.training.dataset_eval import INNER_LIPS, face_mesh

    mesh = face_mesh(np.stack(frames))
    return np.linalg.norm(mesh[:, INNER_LIPS[0]] - mesh[:, INNER_LIPS[1]], axis=-1)


def test_rest_renders_the_photo_with_its_own_mouth(head) -> None:
    """The astronaut smiles with parted lips: the rest keeps them parted, teeth and all."""
    from services.subjects.layout import LABEL_HEAD
    from services.subjects.photo.proxy import PhotoState

    rest = head.rest_state()
    assert head.rig.gap0 > 2.0 and rest.open > 0.3  # the photo's mouth is open
    image = head.render(rest)[0]
    face = head.photo_labels == LABEL_HEAD
    assert _face_psnr(image, head.face.image, face) > 40.0
    m = head.landmarks478(rest)
    assert np.linalg.norm(m[14] - m[13]) == pytest.approx(head.rig.gap0, abs=0.3)
    assert np.linalg.norm(m[291] - m[61]) == pytest.approx(np.linalg.norm(head.rig.image(
        *head.rig.local(head.mesh_grid[[291]])) - head.rig.image(*head.rig.local(head.mesh_grid[[61]]))), abs=0.3)
    closed = head.render(PhotoState(open=0.0, round=rest.round))[0]
    photo_gap, rest_gap, closed_gap = _inner_gap([head.face.image, image, closed])
    assert rest_gap == pytest.approx(photo_gap, rel=0.15, abs=0.5)
    assert closed_gap < 0.25 * photo_gap


def test_silence_rests_at_the_photo_mouth_and_m_closes_it(head) -> None:
    states = head.states(_speech())
    rest = head.rest_state()
    assert states[0].open == pytest.approx(rest.open, abs=0.02)
    assert states[0].round == pytest.approx(rest.round, abs=0.02)
    assert states[-1].open == pytest.approx(rest.open, abs=0.02)
    m = min(states[11:16], key=lambda s: s.open)  # /m/ at 0.46-0.54 s
    lips = head.landmarks478(m)
    assert np.linalg.norm(lips[14] - lips[13]) < 0.25 * head.rig.gap0
    vowel = head.landmarks478(states[8])  # /ɑ/: wider than the photo's smile
    assert np.linalg.norm(vowel[14] - vowel[13]) > 1.2 * head.rig.gap0


def test_closed_mouth_photo_keeps_a_closed_rest(astronaut) -> None:
    from services.subjects.photo.dataset import photo_head
    from services.subjects.photo.face import find_face
    from services.subjects.photo.proxy import PhotoState
    from services.subjects.visemes import mouth_track, speech_units

    big = photo_head(find_face(astronaut, "a.png", 512))
    closed_photo = big.render(PhotoState(open=0.0))[0]
    head = photo_head(find_face(closed_photo, "closed.png", SIZE))
    assert head.rig.gap0 < 1.0 and head.rest_state().open < 0.06
    assert _inner_gap([head.render(head.rest_state())[0]])[0] < 1.0
    times = np.arange(25) / 25
    opening, _ = head.speech_mouth(_speech(), times)
    bare, _ = mouth_track(speech_units(_speech()), times)
    assert np.abs(opening - bare).max() < 0.06


def test_mouth_open_area_grows_with_jaw_drop(head) -> None:
    from services.subjects.photo.proxy import PhotoState

    areas = [int(head.render(PhotoState(open=o))[3].sum()) for o in (0.0, 0.3, 0.6, 0.9)]
    assert areas[0] <= 3
    assert all(b > a for a, b in zip(areas, areas[1:])), areas
    gaps = [np.linalg.norm(np.subtract(*head.landmarks478(PhotoState(open=o))[[14, 13]])) for o in (0.0, 0.9)]
    assert gaps[0] < 1.0 and gaps[1] > 0.08 * head.rig.face_h


def test_rounding_narrows_the_mouth(head) -> None:
    from services.subjects.photo.proxy import PhotoState

    def width(r: float) -> float:
        m = head.landmarks478(PhotoState(open=0.3, round=r))
        return float(np.linalg.norm(m[291] - m[61]))

    assert width(1.0) < 0.9 * width(0.0)


def test_blink_closes_the_lids(head) -> None:
    from services.subjects.photo.proxy import PhotoState

    def opening(b: float) -> float:
        m = head.landmarks478(PhotoState(blink=b))
        return float(np.linalg.norm(m[145] - m[159]) + np.linalg.norm(m[374] - m[386]))

    assert opening(1.0) < 0.25 * opening(0.0) and opening(0.5) < 0.7 * opening(0.0)


def test_turn_moves_the_head_not_the_shoulders(head) -> None:
    from services.subjects.photo.proxy import PhotoState

    rest, turned = head.render(PhotoState()), head.render(PhotoState(yaw=0.25))
    nose = head.landmarks478(PhotoState(yaw=0.25))[1] - head.landmarks478(PhotoState())[1]
    assert abs(nose[0]) > 0.03 * SIZE
    shoulders = slice(int(0.9 * SIZE), SIZE)
    assert np.abs(rest[0][shoulders].astype(int) - turned[0][shoulders].astype(int)).mean() < 2.0
    c2w = head.c2w(PhotoState(yaw=0.25))
    assert np.allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-6)


def test_frames_make_a_valid_dataset(head, tmp_path) -> None:
    from services.subjects.layout import LABEL_HEAD, load_dataset
    from services.subjects.photo.dataset import write_photo_dataset

    root = write_photo_dataset(tmp_path / "astro", head, _speech(), progress=False)
    ds = load_dataset(root)
    meta = json.loads((root / "photo.json").read_text())
    assert len(ds) == 25 and (ds.width, ds.focal) == (SIZE, head.focal) and "oracle" not in ds.extras
    assert meta["kind"] == "photo" and len(meta["mouth_open"]) == 25 and max(meta["mouth_interior"]) > 0
    assert (ds.labels(10) == LABEL_HEAD).mean() > 0.1
    assert not (tmp_path / "astro.partial").exists()


# -- bad photos ------------------------------------------------------------------------------

def _two_faces(astronaut: np.ndarray) -> np.ndarray:
    return np.concatenate([astronaut, astronaut[:, ::-1]], 1)


def _small(astronaut: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((192, 192), Image.LANCZOS))


def _profile(astronaut: np.ndarray) -> np.ndarray:
    from services.subjects.photo.dataset import photo_head
    from services.subjects.photo.face import find_face
    from services.subjects.photo.proxy import PhotoState

    return photo_head(find_face(astronaut, "a.png", 512)).render(PhotoState(yaw=1.0))[0]


def _no_face(astronaut: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut[300:, :200]).resize((512, 512)))  # the suit only


BAD_PHOTOS = {
    "no face": (_no_face, "no face found"),
    "two faces": (_two_faces, "2 faces"),
    "small face": (_small, "only about"),
    "profile": (_profile, "profile view"),
}


@pytest.mark.parametrize("case", list(BAD_PHOTOS))
def test_bad_photo_is_one_clear_error(case, astronaut, tmp_path, monkeypatch) -> None:
    from services.training.photo_subject import from_photo

    monkeypatch.setenv("TALKING_HEAD_HOME", str(tmp_path / "home"))
    make, error = BAD_PHOTOS[case]
    path = tmp_path / "photo.png"
    Image.fromarray(make(astronaut)).save(path)
    with pytest.raises(InvalidInput, match=error):
        from_photo(path, "x", progress=False)
    assert not (tmp_path / "home" / "subjects" / "x").exists()
    assert not (tmp_path / "home" / "datasets").exists()


def test_cli_unknown_encoder_is_one_line_before_any_work(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "services.cli", "subject", "from-photo", "missing.png", "--name", "x",
                        "--encoder", "mel"], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "TALKING_HEAD_HOME": str(tmp_path / "home")})
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "unknown encoder variant 'mel'" in r.stderr
    assert not (tmp_path / "home").exists()


def test_cli_non_image_is_one_line_and_exit_2(preprocess_extra, tmp_path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("not a picture\n")
    r = subprocess.run([sys.executable, "-m", "services.cli", "subject", "from-photo", str(path), "--name", "x"],
                       capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "TALKING_HEAD_HOME": str(tmp_path / "home")})
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not a picture file" in r.stderr
    assert not (tmp_path / "home" / "subjects").exists()


@pytest.mark.slow
def test_from_photo_end_to_end_tiny(astronaut, tmp_path, monkeypatch) -> None:
    """photo → dataset → tiny training → a stored subject; a second run is refused, nothing half-made."""
    from services.common.subject_store import LocalSubjectStore
    from services.training.photo_subject import FromPhotoConfig, from_photo

    monkeypatch.setenv("TALKING_HEAD_HOME", str(tmp_path / "home"))
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    config = FromPhotoConfig(minutes=0.05, preset="tiny", zh_fraction=0.0)
    version, timings = from_photo(path, "astro", config, progress=False)
    manifest = LocalSubjectStore().manifest("astro")
    assert version.is_dir() and manifest["training"]["frames"] > 50 and manifest.get("oracle") is None
    assert set(timings) >= {"proxy_s", "tts_s", "render_s", "train_s"}
    assert manifest["audio_encoder"]["config"]["variant"] == "content"  # the photo default, not the preset's
    assert not list((tmp_path / "home" / "datasets").glob("*.partial"))
    with pytest.raises(InvalidInput, match="already exists"):
        from_photo(path, "astro", config, progress=False)
