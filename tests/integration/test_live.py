"""The live side through Ray Serve for real: the web page, the fMP4 stream it plays
(POST /v1/streams), and WebRTC sessions (POST /v1/sessions ...) over HTTP.

Serve starts once for the module (the `served` fixture in conftest.py); API keys are on."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

requests = pytest.importorskip("requests")

from services.common.video import probe_mp4  # noqa: E402

pytestmark = pytest.mark.integration
KEY = "test-key-1"
HDR = {"Authorization": f"Bearer {KEY}"}
TEXT = "Hello there. Thanks for calling."


def test_page_is_served_without_outside_resources(served):
    r = requests.get(f"{served['http']}/", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "MediaSource" in page and "RTCPeerConnection" in page and "/v1/streams" in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN: works offline


def test_stream_sends_fmp4_chunks_that_form_one_mp4(served):
    url = served["http"]
    with requests.post(f"{url}/v1/streams", json={"text": TEXT, "subject": "tiny-a"}, headers=HDR, stream=True,
                       timeout=120) as r:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "video/mp4"
        parts = [p for p in r.iter_content(chunk_size=None) if p]
    assert len(parts) >= 2  # the init segment and fragments arrive as separate pieces
    info = probe_mp4(b"".join(parts))
    assert info.n_frames > 25 and (info.width, info.height) == (32, 32)
    assert abs(info.audio_seconds - info.video_seconds) <= 1 / 25 + 1e-6

    assert requests.post(f"{url}/v1/streams", json={"text": TEXT}, timeout=10).status_code == 401
    r = requests.post(f"{url}/v1/streams", json={"text": "hi", "subject": "nobody"}, headers=HDR, timeout=30)
    assert r.status_code == 404 and "nobody" in r.json()["error"]
    r = requests.post(f"{url}/v1/streams", json={"text": "hi", "async": True}, headers=HDR, timeout=10)
    assert r.status_code == 400 and "async" in r.json()["error"]
