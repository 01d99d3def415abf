import json

import pytest

from services.common.bundle import make_bundle
from services.common.errors import IntegrityError, InvalidInput, NotFound
from services.common.subject_store import LocalSubjectStore


def _bundle(sid="alice", payload=b"weights"):
    return make_bundle(sid, {"model.safetensors": payload, "background.png": b"png", "tracks.safetensors": b"t"},
                       fps=25, resolution=[64, 64])


def test_save_load_round_trip(tmp_path):
    store = LocalSubjectStore(tmp_path, bundled=None)
    store.save(_bundle())
    b = store.load("alice")
    assert b.blobs["model.safetensors"] == b"weights" and b.manifest["fps"] == 25
    assert store.ids() == ["alice"]
    store.save(_bundle(payload=b"v2"))  # replacing keeps one copy, no temp dirs left
    assert store.load("alice").blobs["model.safetensors"] == b"v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice"]


def test_tampered_blob_is_refused(tmp_path):
    store = LocalSubjectStore(tmp_path, bundled=None)
    path = store.save(_bundle())
    (path / "model.safetensors").write_bytes(b"evil!!!")
    with pytest.raises(IntegrityError, match="sha256"):
        store.load("alice")
    (path / "model.safetensors").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.load("alice")


def test_manifest_edits_are_caught(tmp_path):
    store = LocalSubjectStore(tmp_path, bundled=None)
    path = store.save(_bundle())
    m = json.loads((path / "manifest.json").read_text())
    m["id"] = "bob"
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IntegrityError):
        store.load("alice")
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(IntegrityError):
        store.load("alice")


def test_unknown_and_bad_ids(tmp_path):
    store = LocalSubjectStore(tmp_path, bundled=None)
    with pytest.raises(NotFound, match="unknown subject"):
        store.load("nobody")
    with pytest.raises(InvalidInput):
        store.load("../etc")
    with pytest.raises(NotFound):
        store.remove("nobody")


def test_bundled_subjects_are_found_but_not_removable(tmp_path):
    bundled = tmp_path / "bundled"
    LocalSubjectStore(bundled, bundled=None).save(_bundle("demo"))
    store = LocalSubjectStore(tmp_path / "user", bundled=bundled)
    assert store.ids() == ["demo"] and store.load("demo").id == "demo"
    with pytest.raises(InvalidInput, match="ships with the package"):
        store.remove("demo")
