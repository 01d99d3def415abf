"""Who may import whom under services/ (every import statement, at module level and inside
functions, read with `ast`; relative imports resolved).

- Service packages `services/{tts,denoise,encoder,renderer,subjects,eval}` import only
  themselves, `services.common` and `services.protos`: an Encoder replica needs no TTS.
- `services/common` imports only itself and `services.protos`; `services/protos` only itself.
- `services/gateway`, the online side, imports common, protos, itself and the other
  services' public modules only: `services.<x>` (the package), `services.<x>.service` and
  `services.<x>.deployment`. Not `services.training`, which is offline.
- `services/training` (offline), `services/bench` and the modules directly under services/
  (`services/cli.py`) compose the others: they import any service module, but of the
  gateway only `services.gateway.pipeline`.

A new folder under services/ needs its line here before it can import another service.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = frozenset({"tts", "denoise", "encoder", "renderer", "subjects", "eval"})
COMPOSERS = frozenset({"training", "bench", ""})  # "": modules directly under services/
PUBLIC = frozenset({"service", "deployment"})
GATEWAY_PIPELINE = frozenset({"pipeline", "request", "sinks", "stages", "subjects"})


def allowed(source: str, target: str) -> bool:
    """May a module of package `source` ("" for services/*.py) import module `target`?"""
    parts = target.split(".")
    if len(parts) == 1:  # the bare `services` package
        return True
    pkg, rest = parts[1], parts[2:]
    if pkg == source and source:
        return True
    if source == "protos":
        return False
    if source == "common":
        return pkg == "protos"
    if pkg in ("common", "protos"):
        return True
    if source in SERVICES:
        return False
    if source == "gateway":
        return pkg in SERVICES and (not rest or rest[0] in PUBLIC)
    if source in COMPOSERS:
        return pkg != "gateway" or not rest or rest[0] in GATEWAY_PIPELINE
    return False  # a package without a rule above


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _files() -> list[Path]:
    return sorted(p for p in (ROOT / "services").rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path, modules: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import of a `services` module in the file. `from P import n`
    counts as importing P.n when that is a module, else P."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append((node.lineno, sub if sub in modules else mod))
    return [(line, m) for line, m in dict.fromkeys(out) if m == "services" or m.startswith("services.")]


def _source_package(path: Path) -> str:
    parts = path.relative_to(ROOT / "services").parts
    return parts[0] if len(parts) > 1 else ""


def test_the_walk_sees_every_package() -> None:
    found = {_source_package(p) for p in _files()}
    assert SERVICES | {"common", "protos", "gateway", ""} <= found, found


@pytest.mark.parametrize(("source", "target", "ok"), [
    ("encoder", "services.common.pinyin_phones", True),
    ("encoder", "services.tts.pinyin_phonemes", False),
    ("subjects", "services.tts.service", False),
    ("common", "services.protos.talkinghead.v1.common_pb2", True),
    ("common", "services.encoder.units", False),
    ("gateway", "services.renderer.service", True),
    ("gateway", "services.encoder", True),
    ("gateway", "services.renderer.rays", False),
    ("gateway", "services.training.speech", False),
    ("training", "services.renderer.rays", True),
    ("training", "services.gateway.pipeline", True),
    ("training", "services.gateway.app", False),
    ("", "services.tts.service", True),
    ("newpkg", "services.tts.service", False),
])
def test_the_rule(source: str, target: str, ok: bool) -> None:
    assert allowed(source, target) is ok


def test_services_import_only_what_the_rule_allows() -> None:
    files = _files()
    modules = {_module_name(p) for p in files}
    bad = [f"{p.relative_to(ROOT)}:{line} → {mod}"
           for p in files for line, mod in imported_modules(p, modules)
           if not allowed(_source_package(p), mod)]
    assert not bad, "imports the rule (this file's docstring) forbids:\n" + "\n".join(bad)


def test_an_encoder_process_never_loads_the_tts() -> None:
    code = ("import sys\n"
            "import services.encoder.service\n"
            "from services.encoder.phone_space import PhoneSpace\n"
            "from services.encoder.pinyin import reduced_units\n"
            "PhoneSpace(reduced_units())\n"
            "print(sorted(m for m in sys.modules if m == 'services.tts' or m.startswith('services.tts.')))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout
