import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.common.bundle import SubjectBundle, make_bundle, sha256
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


# ---- durability: a crash at any step leaves the old version or the new one ---------------------


class _Crash(BaseException):
    """Not an Exception: no cleanup handler of the store runs, as after a real crash."""


class _CrashAt:
    """Raise _Crash at the n-th call of any file-system step a save or removal takes."""

    STEPS = (("os", "mkdir"), ("os", "fsync"), ("os", "replace"), ("os", "rename"), ("os", "unlink"),
             ("os", "rmdir"))

    def __init__(self, monkeypatch, n):
        self.n, self.calls = n, 0
        for mod, name in self.STEPS:
            monkeypatch.setattr(f"{mod}.{name}", self._wrap(getattr(os, name)))

    def _wrap(self, fn):
        def step(*args, **kwargs):
            self.calls += 1
            if self.calls == self.n:
                raise _Crash(fn.__name__)
            return fn(*args, **kwargs)
        return step


def _crash_each_step(tmp_path, monkeypatch, prepare, act):
    """Run `act` with a crash injected at step 1, 2, ... until it completes; yield the store
    after each crash (with the injection undone)."""
    for n in range(1, 200):
        root = tmp_path / f"run{n}"
        store = LocalSubjectStore(root, bundled=None)
        prepare(store)
        with monkeypatch.context() as m:
            crash = _CrashAt(m, n)
            try:
                act(store)
            except _Crash:
                pass
        yield store, crash.calls >= n
        if crash.calls < n:
            return
    raise AssertionError("the action never completed")


def _payload_or_none(store):
    try:
        return store.load("alice").blobs["model.safetensors"]
    except NotFound:
        return None


def _assert_clean(store, root=("alice",)):
    assert sorted(p.name for p in store.root.iterdir()) == list(root)
    names = sorted(p.name for p in (store.root / "alice").iterdir())
    assert names[:2] == [".lock", "current"] and len(names) == 3 and names[2].startswith("v-")


def test_a_crash_at_any_step_of_a_replacing_save_leaves_old_or_new(tmp_path, monkeypatch):
    seen = []
    for store, crashed in _crash_each_step(tmp_path, monkeypatch, lambda s: s.save(_bundle(payload=b"old")),
                                           lambda s: s.save(_bundle(payload=b"new"))):
        got = _payload_or_none(store)
        seen.append(got)
        assert got in (b"old", b"new") and store.ids() == ["alice"]
        if not crashed:
            assert got == b"new"
        store.save(_bundle(payload=b"next"))  # the next save works and removes every leftover
        assert store.load("alice").blobs["model.safetensors"] == b"next"
        _assert_clean(store)
    assert b"old" in seen and b"new" in seen and len(seen) > 8


def test_a_crash_during_a_first_save_leaves_nothing_or_the_subject(tmp_path, monkeypatch):
    seen = set()
    for store, _ in _crash_each_step(tmp_path, monkeypatch, lambda s: None, lambda s: s.save(_bundle(payload=b"new"))):
        got = _payload_or_none(store)
        seen.add(got)
        assert store.ids() == ([] if got is None else ["alice"])
    assert seen == {None, b"new"}


def _plain_layout(store, payload=b"old"):
    """A subject written as one plain directory (the bundled demo, older stores)."""
    b = _bundle(payload=payload)
    d = store.root / "alice"
    d.mkdir(parents=True)
    for name, data in b.blobs.items():
        (d / name).write_bytes(data)
    (d / "manifest.json").write_bytes(b.manifest_bytes)


def test_plain_directories_are_read_and_moved_to_versions_without_a_gap(tmp_path, monkeypatch):
    store = LocalSubjectStore(tmp_path / "plain", bundled=None)
    _plain_layout(store)
    assert store.ids() == ["alice"] and store.path("alice") == store.root / "alice"
    assert store.load("alice").blobs["model.safetensors"] == b"old"
    seen = set()
    for store, _ in _crash_each_step(tmp_path, monkeypatch, _plain_layout, lambda s: s.save(_bundle(payload=b"new"))):
        got = _payload_or_none(store)
        seen.add(got)
        assert got in (b"old", b"new") and store.ids() == ["alice"]
        store.save(_bundle(payload=b"next"))
        _assert_clean(store)
    assert seen == {b"old", b"new"}


def test_a_crash_during_remove_leaves_the_subject_or_nothing(tmp_path, monkeypatch):
    seen = set()
    for store, crashed in _crash_each_step(tmp_path, monkeypatch, lambda s: s.save(_bundle(payload=b"old")),
                                           lambda s: s.remove("alice")):
        got = _payload_or_none(store)
        seen.add(got)
        assert store.ids() == ([] if got is None else ["alice"])
        if not crashed:
            assert got is None and sorted(p.name for p in store.root.iterdir()) == []
        store.save(_bundle(payload=b"next"))  # also clears a removed subject's leftovers
        _assert_clean(store)
    assert seen == {None, b"old"}


def test_every_file_and_directory_is_fsynced_before_the_switch(tmp_path, monkeypatch):
    store = LocalSubjectStore(tmp_path, bundled=None)
    store.save(_bundle(payload=b"old"))
    synced, switched = [], []
    fsync, replace = os.fsync, os.replace

    def record_fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).relative_to(tmp_path / "alice").as_posix())
        fsync(fd)

    def record_replace(src, dst):
        switched.append(list(synced))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "replace", record_replace)
    version = store.save(_bundle(payload=b"new")).name
    before = switched[0]
    for name in ("model.safetensors", "background.png", "tracks.safetensors", "manifest.json", ""):
        assert f"{version}/{name}".rstrip("/") in before
    assert any(p.startswith(".current-") for p in before) and "." in before  # pointer file, subject dir
    assert synced[-1] == "."  # the switch itself is made durable


def test_leftovers_never_break_the_listing_and_the_next_save_removes_them(tmp_path):
    store = LocalSubjectStore(tmp_path, bundled=None)
    store.save(_bundle())
    junk_manifest = _bundle(payload=b"half").manifest_bytes
    for leftover in (".alice-abcd_123", ".alice-old-.alice-abcd_123", ".trash-0123456789abcdef"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "manifest.json").write_bytes(junk_manifest)
    (tmp_path / "alice" / "v-0123456789ab-01234567").mkdir()  # a version a crash left half-written
    (tmp_path / "alice" / ".current-89abcdef").write_text("v-0123456789ab-01234567\n")
    (tmp_path / "Not An Id").mkdir()
    (tmp_path / "Not An Id" / "manifest.json").write_bytes(junk_manifest)
    (tmp_path / "notes.txt").write_text("the operator's own file")
    (tmp_path / "empty").mkdir()  # a first save that crashed before its version existed
    assert store.ids() == ["alice"]
    assert [store.manifest(i)["id"] for i in store.ids()] == ["alice"]  # what `subject list` does
    assert store.load("alice").blobs["model.safetensors"] == b"weights"
    store.save(_bundle(payload=b"v2"))
    _assert_clean(store, root=("Not An Id", "alice", "empty", "notes.txt"))


def test_a_bad_pointer_falls_back_to_nothing_not_an_error(tmp_path):
    store = LocalSubjectStore(tmp_path, bundled=None)
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "current").write_text("../../etc\n")
    assert store.ids() == [] and store.path("alice") is None
    with pytest.raises(NotFound):
        store.load("alice")


def test_blob_names_with_path_parts_are_refused(tmp_path):
    store = LocalSubjectStore(tmp_path / "store", bundled=None)
    b = _bundle()
    m = dict(b.manifest, blobs={**b.manifest["blobs"], "../escape": {"sha256": sha256(b"x"), "size": 1}})
    with pytest.raises(InvalidInput, match="bad blob name"):
        store.save(SubjectBundle(m, {**b.blobs, "../escape": b"x"}))
    assert not (tmp_path / "escape").exists()
    path = store.save(b)
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IntegrityError, match="bad blob name"):
        store.load("alice")


_SAVER = """
import sys
from services.common.bundle import SubjectBundle, make_bundle, sha256
from services.common.subject_store import LocalSubjectStore
store = LocalSubjectStore(sys.argv[1], bundled=None)
i = 0
while True:
    payload = b"A" * 5000 if i % 2 else b"B" * 7000
    store.save(make_bundle("alice", {"model.safetensors": payload, "background.png": b"png",
                                     "tracks.safetensors": b"t"}, fps=25, resolution=[64, 64]))
    i += 1
"""


def test_saves_killed_with_sigkill_while_others_read_never_lose_the_subject(tmp_path):
    root = tmp_path / "store"
    store = LocalSubjectStore(root, bundled=None)
    cwd = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    reads = 0
    for delay in (0.05, 0.11, 0.17, 0.23, 0.31, 0.4):
        child = subprocess.Popen([sys.executable, "-c", _SAVER, str(root)], cwd=cwd, env=env)
        try:
            deadline = time.time() + 30
            while store.path("alice") is None and time.time() < deadline:
                time.sleep(0.01)
            until = time.time() + delay
            while time.time() < until:  # readers during saves see one whole version
                assert store.load("alice").blobs["model.safetensors"] in (b"A" * 5000, b"B" * 7000)
                reads += 1
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert store.ids() == ["alice"]
        assert store.load("alice").blobs["model.safetensors"] in (b"A" * 5000, b"B" * 7000)
    assert reads > 0
    store.save(_bundle(payload=b"after"))
    _assert_clean(store)
