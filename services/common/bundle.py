"""Subject bundles (DESIGN.md §4): a manifest with the sha256 of every blob, plus the blobs.

A bundle is the unit that the local store and Redis hold. Blobs are safetensors, PNG and
JSON only — never pickle. A bundle whose hashes do not match is refused, not rendered.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from services.common.errors import IntegrityError, InvalidInput

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Blobs every bundle has. Others (e.g. fusion.safetensors) are optional.
REQUIRED_BLOBS = ("model.safetensors", "background.png", "tracks.safetensors")
#: Key prefixes inside model.safetensors: the subject's audio encoder and its renderer.
AUDIO_ENCODER_PREFIX = "audio_encoder."
RENDERER_PREFIX = "renderer."
#: The renderer kind of bundles whose manifest names none.
DEFAULT_KIND = "triplane-nerf"
# fullmatch, not match with `$`: `$` also matches before a trailing newline ("demo\n")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_BLOB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def check_subject_id(subject_id: str) -> str:
    if not isinstance(subject_id, str) or not _ID.fullmatch(subject_id):
        raise InvalidInput(f"bad subject id {subject_id!r}: use 1–64 of a-z, 0-9, '-', '_' (starting with a letter or digit)")
    return subject_id


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class SubjectBundle:
    manifest: dict[str, Any]
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.manifest["id"]

    @property
    def manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest, indent=1, sort_keys=True).encode()

    @property
    def digest(self) -> str:
        """Identity of this exact bundle version: sha256 of its manifest."""
        return sha256(self.manifest_bytes)

    @property
    def kind(self) -> str:
        """The renderer kind that reads this bundle."""
        return str(self.manifest.get("kind", DEFAULT_KIND))

    def tensors(self, blob: str = "model.safetensors", prefix: str = "") -> dict[str, Any]:
        """Load a safetensors blob as torch tensors (no pickle involved); with `prefix`, only
        the keys under it, with the prefix removed."""
        from safetensors.torch import load

        tensors = load(self.blobs[blob])
        if not prefix:
            return tensors
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    def verify(self) -> "SubjectBundle":
        """Raise IntegrityError unless every listed blob is present with the listed hash."""
        m = self.manifest
        if m.get("format_version") != FORMAT_VERSION:
            raise IntegrityError(f"subject {m.get('id')!r}: unsupported bundle format {m.get('format_version')!r}")
        listed = m.get("blobs", {})
        missing = [b for b in REQUIRED_BLOBS if b not in listed]
        if missing:
            raise IntegrityError(f"subject {m.get('id')!r}: manifest lists no {', '.join(missing)}")
        for name, meta in listed.items():
            data = self.blobs.get(name)
            if data is None:
                raise IntegrityError(f"subject {m.get('id')!r}: blob {name} is missing")
            if len(data) != meta.get("size") or sha256(data) != meta.get("sha256"):
                raise IntegrityError(f"subject {m.get('id')!r}: blob {name} does not match its sha256 — refusing to use it")
        extra = set(self.blobs) - set(listed)
        if extra:
            raise IntegrityError(f"subject {m.get('id')!r}: blobs not in the manifest: {', '.join(sorted(extra))}")
        return self


def check_blob_name(name: str) -> str:
    """A blob name is a plain file name (no path parts), never the manifest's."""
    if not isinstance(name, str) or not _BLOB_NAME.fullmatch(name) or name in (MANIFEST, ".", ".."):
        raise InvalidInput(f"bad blob name {name!r}")
    return name


def make_bundle(subject_id: str, blobs: dict[str, bytes], **manifest_fields: Any) -> SubjectBundle:
    """Build a bundle, hashing every blob into the manifest."""
    check_subject_id(subject_id)
    for name in blobs:
        check_blob_name(name)
    manifest = {
        "id": subject_id,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **manifest_fields,
        "blobs": {name: {"sha256": sha256(data), "size": len(data)} for name, data in sorted(blobs.items())},
    }
    return SubjectBundle(manifest, dict(blobs)).verify()


def parse_manifest(data: bytes, subject_id: str | None = None) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"subject {subject_id!r}: manifest is not valid JSON") from exc
    if not isinstance(manifest, dict) or "id" not in manifest or "blobs" not in manifest:
        raise IntegrityError(f"subject {subject_id!r}: manifest lacks id or blobs")
    if subject_id is not None and manifest["id"] != subject_id:
        raise IntegrityError(f"subject {subject_id!r}: manifest names {manifest['id']!r}")
    return manifest
