"""The text-source switches: content-model caches hold one source, CLIs refuse unknown ones."""

import subprocess
import sys

import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.subjects.synth import SynthConfig, synth
from services.training.content_model import cache_texts


def test_a_content_model_cache_holds_one_text_source(tmp_path):
    cache_texts(tmp_path / "new", "natural")
    cache_texts(tmp_path / "new", "natural")  # same source: fine
    with pytest.raises(SystemExit, match="holds natural sentences, not templates"):
        cache_texts(tmp_path / "new", "templates")
    old = tmp_path / "old" / "data" / "train"
    old.mkdir(parents=True)
    np.savez(old / "en_0000.npz", audio=np.zeros(1))  # a cache from before the marker: templates
    with pytest.raises(SystemExit, match="holds templates sentences"):
        cache_texts(tmp_path / "old", "natural")


def test_synth_refuses_an_unknown_text_source(tmp_path):
    with pytest.raises(InvalidInput, match="unknown text source"):
        synth("x", SynthConfig(texts="novels"), out=tmp_path / "x", speak=None)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, timeout=120)


def test_bench_texts_only_for_stages_that_speak():
    r = _cli("bench", "--stage", "render", "--texts", "templates")
    assert r.returncode == 2 and "--texts applies to" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_eval_names_the_built_in_sets_when_a_texts_file_is_missing(tmp_path):
    r = _cli("eval", "--texts", str(tmp_path / "none.txt"))
    assert r.returncode == 2 and "natural, templates" in r.stderr
