"""Shared objects built from the project's C++ sources on first use, with the system compiler.

A build goes to a cache directory (``$TALKING_HEAD_EXT_DIR`` or ``~/.cache/talking-head/ext``),
never into the repo, keyed by a hash of the sources, flags, compiler and CPU: an edited source
rebuilds, an unchanged one is reused, and concurrent builders agree on one file (atomic rename).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("TALKING_HEAD_EXT_DIR")
    return Path(env) if env else Path.home() / ".cache" / "talking-head" / "ext"


def compiler() -> str | None:
    """The C++ compiler ($CXX, else g++) on PATH, or None."""
    return shutil.which(os.environ.get("CXX", "g++"))


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    model = next((ln for ln in text.splitlines() if ln.startswith("model name")), "")
    return model + flags


def build_shared(stem: str, sources: list[Path], flags: list[str], libs: tuple[str, ...] = ()) -> Path:
    """The path of `stem_<hash>.so` built from `sources`; RuntimeError when it cannot be built."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++ or $CXX) on PATH")
    texts = [f"{src.name}\0{src.read_text()}" for src in sources]
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256("\0".join([*texts, " ".join(flags), *libs, version, _cpu_signature()]).encode())
    target = cache_dir() / f"{stem}_{key.hexdigest()[:16]}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            cmd = [cxx, *flags, *map(str, sources), "-o", str(out), *libs]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"compiling {stem} failed: {proc.stderr.strip()[-2000:]}")
            os.replace(out, target)
    return target
