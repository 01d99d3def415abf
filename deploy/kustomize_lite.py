"""A minimal, strict kustomize renderer for the features deploy/k8s uses, so the tests and
`render_manifests.py --print` render the overlays without a kustomize binary.

Supported (same semantics as kustomize): `resources` (YAML files, multi-document, and
directories holding a kustomization.yaml), `patches` with `path` or inline `patch` that
are either JSON6902 (a list of RFC 6902 operations: add, remove, replace, test, copy,
move; `target` required) or a strategic-merge patch limited to maps (lists inside a
strategic-merge patch are refused: kustomize merges some lists by key and replaces
others, so use JSON6902 for those). Any other kustomization field is an error, so a
manifest never silently depends on something this renderer ignores.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "patches"}


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for d in docs:
        if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d:
            raise KustomizeError(f"{path}: not a Kubernetes object: {str(d)[:80]}")
    return docs


def _res_id(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta.get("name", ""))


def _matches(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    meta = obj.get("metadata") or {}
    want = {"group": group, "version": version, "kind": obj["kind"], "name": meta.get("name"),
            "namespace": meta.get("namespace")}
    unknown = set(target) - set(want)
    if unknown:
        raise KustomizeError(f"unsupported patch target fields: {sorted(unknown)}")
    return all(want[k] == v for k, v in target.items())


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeError(f"bad JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(doc, list):
            doc = doc[_index(doc, p, allow_end=False)]
        elif isinstance(doc, dict):
            if p not in doc:
                raise KustomizeError(f"path element {p!r} not found")
            doc = doc[p]
        else:
            raise KustomizeError(f"cannot descend into {type(doc).__name__} at {p!r}")
    return doc


def _index(lst: list, p: str, *, allow_end: bool) -> int:
    if p == "-" and allow_end:
        return len(lst)
    if not p.isdigit():
        raise KustomizeError(f"bad list index {p!r}")
    i = int(p)
    if i > len(lst) or (i == len(lst) and not allow_end):
        raise KustomizeError(f"list index {i} out of range")
    return i


def apply_json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        parts = _pointer(op.get("path", ""))
        if not parts:
            raise KustomizeError("patching the whole document is not supported")
        parent, last = _walk(doc, parts[:-1]), parts[-1]
        if kind == "test":
            if _walk(doc, parts) != op["value"]:
                raise KustomizeError(f"test failed at {op['path']}: {_walk(doc, parts)!r} != {op['value']!r}")
        elif kind in ("add", "replace", "copy", "move"):
            if kind in ("copy", "move"):
                src = _pointer(op["from"])
                value = copy.deepcopy(_walk(doc, src))
                if kind == "move":
                    sp = _walk(doc, src[:-1])
                    del sp[_index(sp, src[-1], allow_end=False) if isinstance(sp, list) else src[-1]]
            else:
                value = copy.deepcopy(op["value"])
            if isinstance(parent, list):
                if kind == "replace":
                    parent[_index(parent, last, allow_end=False)] = value
                else:
                    parent.insert(_index(parent, last, allow_end=True), value)
            elif isinstance(parent, dict):
                if kind == "replace" and last not in parent:
                    raise KustomizeError(f"replace: {op['path']} does not exist")
                parent[last] = value
            else:
                raise KustomizeError(f"cannot set {op['path']}")
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[_index(parent, last, allow_end=False)]
            elif isinstance(parent, dict) and last in parent:
                del parent[last]
            else:
                raise KustomizeError(f"remove: {op['path']} does not exist")
        else:
            raise KustomizeError(f"unsupported JSON6902 op {kind!r}")
    return doc


def merge_patch(base: Any, patch: Any, where: str = "") -> Any:
    """Strategic merge restricted to maps (null deletes a key)."""
    if not isinstance(patch, dict):
        if isinstance(patch, list):
            raise KustomizeError(f"list at {where or '/'} in a strategic-merge patch: use JSON6902")
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v, f"{where}/{k}")
    return out


def build(kdir: str | Path) -> list[dict[str, Any]]:
    """Render the kustomization in `kdir` to a list of objects."""
    kdir = Path(kdir)
    kfile = kdir / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"no kustomization.yaml in {kdir}")
    kust = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(kust) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported fields {sorted(unknown)}")
    objs: list[dict[str, Any]] = []
    for res in kust.get("resources") or []:
        p = (kdir / res).resolve()
        objs.extend(build(p) if p.is_dir() else load_documents(p))
    seen: set = set()
    for o in objs:
        rid = _res_id(o)
        if rid in seen:
            raise KustomizeError(f"{kfile}: duplicate resource {rid}")
        seen.add(rid)
    for entry in kust.get("patches") or []:
        unknown = set(entry) - {"path", "patch", "target"}
        if unknown:
            raise KustomizeError(f"{kfile}: unsupported patch fields {sorted(unknown)}")
        if "path" in entry:
            body = yaml.safe_load((kdir / entry["path"]).read_text())
        else:
            body = yaml.safe_load(entry["patch"])
        target = entry.get("target")
        if isinstance(body, list):
            if not target:
                raise KustomizeError(f"{kfile}: a JSON6902 patch needs a target")
            hits = [i for i, o in enumerate(objs) if _matches(o, target)]
            if not hits:
                raise KustomizeError(f"{kfile}: patch target {target} matches nothing")
            for i in hits:
                objs[i] = apply_json6902(objs[i], body)
        elif isinstance(body, dict):
            if target is None:
                meta = body.get("metadata") or {}
                target = {"kind": body.get("kind"), "name": meta.get("name")}
            hits = [i for i, o in enumerate(objs) if _matches(o, target)]
            if not hits:
                raise KustomizeError(f"{kfile}: patch target {target} matches nothing")
            for i in hits:
                objs[i] = merge_patch(objs[i], body)
        else:
            raise KustomizeError(f"{kfile}: a patch must be a list (JSON6902) or a map")
    return objs
