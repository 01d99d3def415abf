"""The local subject store: one directory per subject, written atomically, verified on read.

Lookup order: the user's store under $TALKING_HEAD_HOME/subjects, then the subjects that
ship inside the package (the demo), so the package works out of the box.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from services.common.bundle import MANIFEST, SubjectBundle, check_subject_id, parse_manifest
from services.common.errors import InvalidInput, NotFound
from services.common.paths import subjects_dir

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "subjects" / "bundled"


class LocalSubjectStore:
    def __init__(self, root: Path | None = None, bundled: Path | None = BUNDLED_DIR) -> None:
        self.root = Path(root) if root is not None else subjects_dir()
        self.bundled = bundled

    def _dirs(self) -> list[Path]:
        return [d for d in (self.root, self.bundled) if d is not None and d.is_dir()]

    def path(self, subject_id: str) -> Path | None:
        check_subject_id(subject_id)
        for base in self._dirs():
            if (base / subject_id / MANIFEST).is_file():
                return base / subject_id
        return None

    def ids(self) -> list[str]:
        found: set[str] = set()
        for base in self._dirs():
            found |= {p.parent.name for p in base.glob(f"*/{MANIFEST}")}
        return sorted(found)

    def manifest(self, subject_id: str) -> dict:
        path = self.path(subject_id)
        if path is None:
            raise NotFound(self._not_found(subject_id))
        return parse_manifest((path / MANIFEST).read_bytes(), subject_id)

    def load(self, subject_id: str) -> SubjectBundle:
        """Read and verify a bundle; IntegrityError if any blob does not match its hash."""
        path = self.path(subject_id)
        if path is None:
            raise NotFound(self._not_found(subject_id))
        manifest = parse_manifest((path / MANIFEST).read_bytes(), subject_id)
        blobs = {name: (path / name).read_bytes() for name in manifest["blobs"] if (path / name).is_file()}
        return SubjectBundle(manifest, blobs).verify()

    def save(self, bundle: SubjectBundle) -> Path:
        """Write the bundle to the user store atomically (replaces an older version)."""
        bundle.verify()
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / check_subject_id(bundle.id)
        tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.id}-", dir=self.root))
        try:
            for name, data in bundle.blobs.items():
                (tmp / name).write_bytes(data)
            (tmp / MANIFEST).write_bytes(bundle.manifest_bytes)
            old = None
            if target.exists():
                old = target.with_name(f".{bundle.id}-old-{tmp.name}")
                target.rename(old)
            tmp.rename(target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def remove(self, subject_id: str) -> None:
        target = self.root / check_subject_id(subject_id)
        if not (target / MANIFEST).is_file():
            if self.bundled is not None and (self.bundled / subject_id / MANIFEST).is_file():
                raise InvalidInput(f"subject {subject_id!r} ships with the package and cannot be removed")
            raise NotFound(self._not_found(subject_id))
        shutil.rmtree(target)

    def _not_found(self, subject_id: str) -> str:
        known = self.ids()
        return f"unknown subject {subject_id!r}" + (f" (known: {', '.join(known)})" if known else " (no subjects yet)")
