import json
import subprocess
import sys

import grpc

from services.common import errors


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_and_version():
    r = _cli("--help")
    assert r.returncode == 0 and "tts" in r.stdout and "bench" in r.stdout
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("talking-head ")


def test_say_offers_no_way_to_drop_the_synthetic_label():
    r = _cli("say", "--help")
    assert r.returncode == 0 and "--out" in r.stdout and "--exact" in r.stdout
    assert not any(word in r.stdout.lower() for word in ("label", "provenance", "metadata", "watermark"))


def test_tts_writes_wav_and_alignments(tmp_path):
    import soundfile as sf

    out, al = tmp_path / "en.wav", tmp_path / "en.json"
    r = _cli("tts", "Good morning.", "--out", str(out), "--alignments", str(al))
    assert r.returncode == 0, r.stderr
    audio, sr = sf.read(out)
    doc = json.loads(al.read_text())
    assert sr == 22_050 and doc["phonemes"][-1]["end_s"] == doc["duration_s"]
    assert abs(len(audio) / sr - doc["duration_s"]) < 1e-3


def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path):
    r = _cli("tts", "", "--out", str(tmp_path / "x.wav"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "empty" in r.stderr
    assert not (tmp_path / "x.wav").exists()


def test_errors_map_to_grpc_and_http():
    assert errors.InvalidInput("x").grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    assert errors.NotFound("x").http_status == 404
    assert errors.ResourceExhausted("x").grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert errors.Unavailable("x").http_status == 503
