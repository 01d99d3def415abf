"""The local subject store: one directory per subject, switched atomically, verified on read.

Lookup order: the user's store under $TALKING_HEAD_HOME/subjects, then the subjects that
ship inside the package (the demo), so the package works out of the box.

Layout of one subject (`<root>/<id>/`)::

    current             the live version's directory name (one line)
    v-<digest>-<token>/ manifest.json and the blobs of one version
    .lock               serialises saves and removals of this subject across processes

A save writes and fsyncs a new version directory, then replaces `current` (written to a
temporary file, fsynced, `os.replace`d: the one atomic switch), then deletes everything
else in the subject's directory. A crash at any point therefore leaves the old version or
the new one, never none or a mix; whatever a crash leaves behind is ignored by readers and
deleted by the next save. A directory with `manifest.json` at its top and no valid
`current` (the bundled demo, stores written before versioned directories) is read as is,
and the next save of that subject turns it into the versioned layout.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from services.common.bundle import MANIFEST, SubjectBundle, check_blob_name, check_subject_id, parse_manifest
from services.common.errors import IntegrityError, InvalidInput, NotFound
from services.common.paths import subjects_dir

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "subjects" / "bundled"
POINTER = "current"
_LOCK = ".lock"
_VERSION = re.compile(r"v-[0-9a-f]{12}-[0-9a-f]{8}")
#: Root-level leftovers this store (or its earlier single-directory swap) may leave behind.
_TRASH = re.compile(r"\.trash-[0-9a-f]{16}")
#: A version can be swapped out while a reader reads it: the read is retried this often.
_READ_TRIES = 5

T = TypeVar("T")


class LocalSubjectStore:
    def __init__(self, root: Path | None = None, bundled: Path | None = BUNDLED_DIR) -> None:
        self.root = Path(root) if root is not None else subjects_dir()
        self.bundled = bundled

    def _dirs(self) -> list[Path]:
        return [d for d in (self.root, self.bundled) if d is not None and d.is_dir()]

    def path(self, subject_id: str) -> Path | None:
        """The directory holding the live version's manifest and blobs, or None."""
        check_subject_id(subject_id)
        for base in self._dirs():
            live = live_version(base / subject_id)
            if live is not None:
                return live
        return None

    def ids(self) -> list[str]:
        """Every subject with a readable live version; other names (leftovers) are skipped."""
        found: set[str] = set()
        for base in self._dirs():
            for entry in base.iterdir():
                if _is_subject_id(entry.name) and live_version(entry) is not None:
                    found.add(entry.name)
        return sorted(found)

    def manifest(self, subject_id: str) -> dict:
        return self._read(subject_id, lambda path: parse_manifest((path / MANIFEST).read_bytes(), subject_id))

    def load(self, subject_id: str) -> SubjectBundle:
        """Read and verify a bundle; IntegrityError if any blob does not match its hash."""
        return self._read(subject_id, lambda path: _read_bundle(path, subject_id)).verify()

    def _read(self, subject_id: str, read: Callable[[Path], T]) -> T:
        """`read(live directory)`, again if a save or removal swapped that directory meanwhile."""
        for attempt in range(1, _READ_TRIES + 1):
            path = self.path(subject_id)
            if path is None:
                break
            try:
                result = read(path)
            except FileNotFoundError:
                continue
            if attempt == _READ_TRIES or self.path(subject_id) == path:
                return result
        raise NotFound(self._not_found(subject_id))

    def save(self, bundle: SubjectBundle) -> Path:
        """Write the bundle to the user store as its live version (replacing an older one);
        returns the version's directory."""
        bundle.verify()
        for name in bundle.blobs:
            check_blob_name(name)
        target = self.root / check_subject_id(bundle.id)
        with self._locked(target):
            version = target / f"v-{bundle.digest[:12]}-{secrets.token_hex(4)}"
            os.mkdir(version)
            for name, data in bundle.blobs.items():
                _write_synced(version / name, data)
            _write_synced(version / MANIFEST, bundle.manifest_bytes)
            _fsync_dir(version)
            _fsync_dir(target)
            pointer_tmp = target / f".{POINTER}-{secrets.token_hex(4)}"
            _write_synced(pointer_tmp, f"{version.name}\n".encode())
            os.replace(pointer_tmp, target / POINTER)
            _fsync_dir(target)
            for entry in target.iterdir():
                if entry.name not in (POINTER, _LOCK, version.name):
                    _delete(entry)
        self._clean_root(bundle.id)
        return version

    def remove(self, subject_id: str) -> None:
        target = self.root / check_subject_id(subject_id)
        with self._locked(target, create=False) as exists:
            if not exists or live_version(target) is None:
                if self.bundled is not None and live_version(self.bundled / subject_id) is not None:
                    raise InvalidInput(f"subject {subject_id!r} ships with the package and cannot be removed")
                raise NotFound(self._not_found(subject_id))
            trash = self.root / f".trash-{secrets.token_hex(8)}"
            os.rename(target, trash)  # gone in one step; the files go below
            _fsync_dir(self.root)
        _delete(trash)

    @contextmanager
    def _locked(self, target: Path, create: bool = True) -> Iterator[bool]:
        """Hold the subject's lock (its directory is created first unless `create` is False;
        yields whether it exists). A lock file whose directory was removed meanwhile is
        not the subject's lock any more: take the new one."""
        while True:
            if create and not target.is_dir():
                self.root.mkdir(parents=True, exist_ok=True)
                target.mkdir(exist_ok=True)
                _fsync_dir(self.root)
            try:
                fd = os.open(target / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                if create:
                    continue
                yield False
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(target / _LOCK))
                except FileNotFoundError:
                    same = False
                if same:
                    yield True
                    return
            finally:
                os.close(fd)

    def _clean_root(self, subject_id: str) -> None:
        """Delete root-level leftovers: removed subjects' trash and the temporary and old
        directories of the earlier rename-twice swap (`.<id>-XXXXXXXX`, `.<id>-old-...`)."""
        sid = re.escape(subject_id)
        swap = re.compile(rf"\.{sid}-(old-\.{sid}-)?[a-z0-9_]{{8}}")
        for entry in self.root.iterdir():
            if _TRASH.fullmatch(entry.name) or swap.fullmatch(entry.name):
                _delete(entry)

    def _not_found(self, subject_id: str) -> str:
        known = self.ids()
        return f"unknown subject {subject_id!r}" + (f" (known: {', '.join(known)})" if known else " (no subjects yet)")


def live_version(subject_dir: Path) -> Path | None:
    """The directory of a subject's live version: the one `current` names, else the
    subject directory itself when it holds a manifest (the plain layout), else None."""
    name = _pointer(subject_dir)
    for _ in range(_READ_TRIES):
        if _VERSION.fullmatch(name) and (subject_dir / name / MANIFEST).is_file():
            return subject_dir / name
        now = _pointer(subject_dir)
        if now == name:
            break
        name = now  # a save switched versions (and deleted the one read) meanwhile
    if (subject_dir / MANIFEST).is_file():
        return subject_dir
    return None


def _pointer(subject_dir: Path) -> str:
    try:
        return (subject_dir / POINTER).read_text().strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnicodeDecodeError):
        return ""


def _read_bundle(path: Path, subject_id: str) -> SubjectBundle:
    manifest = parse_manifest((path / MANIFEST).read_bytes(), subject_id)
    blobs = {}
    for name in manifest["blobs"]:
        try:
            check_blob_name(name)
        except InvalidInput as exc:
            raise IntegrityError(f"subject {subject_id!r}: manifest lists a bad blob name {name!r}") from exc
        try:
            blobs[name] = (path / name).read_bytes()
        except FileNotFoundError:
            pass  # verify() names it missing
    return SubjectBundle(manifest, blobs)


def _is_subject_id(name: str) -> bool:
    try:
        check_subject_id(name)
    except InvalidInput:
        return False
    return True


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (new, renamed, replaced files) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
