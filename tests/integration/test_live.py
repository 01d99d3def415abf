"""The live side through Ray Serve for real: the web page, the fMP4 stream it plays
(POST /v1/streams), and WebRTC sessions (POST /v1/sessions ...) over HTTP.

Serve starts once for the module (the `served` fixture in conftest.py); API keys are on."""

from __future__ import annotations

import os
import time

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


SERVE_APP_ARGS = {"limits": {"max_sessions": 1}}
AVATAR_REPLICAS = 2


def edit_serve_config(config):
    """Two Avatar replicas: session calls land on either, and must reach the session's host."""
    for app in config["applications"]:
        for dep in app["deployments"]:
            if dep["name"] == "Avatar":
                dep.pop("autoscaling_config", None)
                dep["num_replicas"] = AVATAR_REPLICAS
    return config


async def _offer(pc) -> str:
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


def _live_gauges(url: str, n: int = 8) -> list[float]:
    """`talking_head_live_sessions` of the replicas that answered n scrapes of /metrics."""
    out = []
    for _ in range(n):
        for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
            if line.startswith("talking_head_live_sessions "):
                out.append(float(line.split()[1]))
    return out


def test_sessions_over_http_stream_frames_and_answer_clear_codes(served):
    import asyncio

    pytest.importorskip("aiortc")
    from aiortc import RTCPeerConnection, RTCSessionDescription

    url = served["http"]

    def post(path, **kw):
        return requests.post(f"{url}{path}", headers={**HDR, **kw.pop("headers", {})}, timeout=60, **kw)

    async def call(fn, *a, **kw):
        return await asyncio.to_thread(fn, *a, **kw)

    async def main():
        pc = RTCPeerConnection()
        others: list = []
        extra: list[str] = []
        frames = {"video": 0, "audio": 0}

        @pc.on("track")
        def _track(track):
            async def read():
                while True:
                    try:
                        await track.recv()
                    except Exception:  # noqa: BLE001 - the track ended
                        return
                    frames[track.kind] += 1
            asyncio.ensure_future(read())

        try:
            offer = await _offer(pc)
            r = await call(requests.post, f"{url}/v1/sessions", json={"sdp": offer}, timeout=30)
            assert r.status_code == 401
            r = await call(post, "/v1/sessions", json={"type": "offer", "sdp": "v=0 nonsense", "subject": "tiny-a"})
            assert r.status_code == 400 and "SDP" in r.json()["error"]
            r = await call(post, "/v1/sessions", json={"sdp": offer, "subject": "nobody"})
            assert r.status_code == 404
            # WHIP-style: the offer as the body, the answer back with the session's URL
            r = await call(post, "/v1/sessions?subject=tiny-a", data=offer.encode(),
                           headers={"Content-Type": "application/sdp"})
            assert r.status_code == 201, r.text
            assert r.headers["content-type"].startswith("application/sdp") and r.text.startswith("v=0")
            session = r.headers["location"]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
            # one session per replica: more offers fill the other replica, then 429 + Retry-After
            codes = []
            for _ in range(6):
                other = RTCPeerConnection()
                others.append(other)
                r = await call(post, "/v1/sessions", json={"sdp": await _offer(other), "subject": "tiny-a"})
                codes.append(r.status_code)
                if r.status_code == 201:
                    extra.append(r.json()["url"])
                else:
                    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, r.text
            assert codes.count(201) <= AVATAR_REPLICAS - 1 and 429 in codes, codes
            deadline = asyncio.get_running_loop().time() + 60
            while frames["video"] < 10 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            assert frames["video"] >= 10 and frames["audio"] >= 10  # the idle loop, before any speech
            # session affinity: every call reaches the session's host, whichever replica takes it
            for _ in range(8):
                info = await call(requests.get, f"{url}{session}", headers=HDR, timeout=10)
                assert info.status_code == 200 and info.json()["subject"] == "tiny-a", info.text
            r = await call(post, f"{session}/speak", json={"text": TEXT, "lang": "en"})
            assert r.status_code == 202 and r.json()["utterance"] == 0
            r = await call(post, f"{session}/speak", json={"text": TEXT, "subject": "tiny-b"})
            assert r.status_code == 400  # the session fixes the subject
            deadline = asyncio.get_running_loop().time() + 60
            while (info := (await call(requests.get, f"{url}{session}", headers=HDR, timeout=10)).json()
                   )["speaking_frames"] == 0 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)
            assert info["speaking_frames"] > 0 and info["first_speaking_frame_s"], info
            r = await call(post, f"{session}/interrupt")
            assert r.status_code == 200 and r.json()["interrupted"], r.text
            r = await call(requests.get, f"{url}{session}", headers={"Authorization": "Bearer nope"}, timeout=10)
            assert r.status_code == 401
            for s in [session, *extra]:
                r = await call(requests.delete, f"{url}{s}", headers=HDR, timeout=10)
                assert r.status_code == 204
            for _ in range(3):
                r = await call(post, f"{session}/speak", json={"text": "Hi."})
                assert r.status_code == 404  # speak after delete, on either replica
            r = await call(post, "/v1/sessions/" + "0" * 32 + "/interrupt")
            assert r.status_code == 404
            r = await call(post, "/v1/sessions/nope/interrupt")
            assert r.status_code == 400
        finally:
            await pc.close()
            for o in others:
                await o.close()
        gauges = await call(_live_gauges, url)
        assert gauges and not any(gauges), gauges  # no session left open on any replica

    asyncio.run(asyncio.wait_for(main(), 240))


def test_converse_drives_a_session_over_a_grpc_stream(served):
    """Open, speak, interrupt over one bidirectional gRPC stream through Ray's proxy, the media
    over WebRTC; a refused speak is an error event; closing the stream ends the session."""
    import asyncio

    pytest.importorskip("aiortc")
    import grpc

    from services.gateway.live.client import LiveClient
    from services.protos.talkinghead.v1 import avatar_pb2 as pb
    from services.protos.talkinghead.v1 import avatar_pb2_grpc

    url = served["http"]
    target = served["config"]["grpc_options"]["port"]

    async def main():
        client = LiveClient()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{target}") as channel:
            stub = avatar_pb2_grpc.AvatarStub(channel)
            call = stub.Converse(metadata=(("authorization", f"Bearer {KEY}"),))
            try:
                await call.write(pb.ConverseRequest(open=pb.ConverseOpen(offer_sdp=await client.offer(),
                                                                         subject="tiny-a")))
                opened = (await call.read()).opened
                assert len(opened.session_id) == 32 and opened.answer_sdp.startswith("v=0")
                await client.accept(opened.answer_sdp)
                await client.wait_for(lambda: len(client.video) >= 10, timeout=60)

                async def next_event(kind: str, **match):
                    while True:
                        ev = await asyncio.wait_for(call.read(), 60)
                        assert ev is not grpc.aio.EOF
                        if ev.WhichOneof("event") == kind and all(getattr(getattr(ev, kind), k) == v
                                                                   for k, v in match.items()):
                            return getattr(ev, kind)

                await call.write(pb.ConverseRequest(speak=pb.ConverseSpeak(text="   ")))
                err = await next_event("error")
                assert err.code == "INVALID_ARGUMENT"
                await call.write(pb.ConverseRequest(speak=pb.ConverseSpeak(text=TEXT, lang="en")))
                assert (await next_event("queued")).utterance == 0
                speaking = await next_event("state", state="speaking")
                assert speaking.utterance == 0 and speaking.pts == round(speaking.media_seconds * 90_000)
                await call.write(pb.ConverseRequest(interrupt=pb.ConverseInterrupt()))
                assert list((await next_event("interrupted")).utterances) == [0]
                await next_event("state", state="idle")
                r = await asyncio.to_thread(requests.get, f"{url}/v1/sessions/{opened.session_id}", headers=HDR,
                                            timeout=10)
                assert r.status_code == 200  # the same session over HTTP
                await call.done_writing()
                while await call.read() is not grpc.aio.EOF:
                    pass
                assert await call.code() == grpc.StatusCode.OK
            finally:
                call.cancel()
                await client.close()
        r = await asyncio.to_thread(requests.get, f"{url}/v1/sessions/{opened.session_id}", headers=HDR, timeout=10)
        assert r.status_code == 404  # closing the stream ended the session

        async with grpc.aio.insecure_channel(f"127.0.0.1:{target}") as channel:
            call = avatar_pb2_grpc.AvatarStub(channel).Converse(metadata=(("authorization", f"Bearer {KEY}"),))
            await call.write(pb.ConverseRequest(speak=pb.ConverseSpeak(text="Hi.")))
            await call.done_writing()
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call.read()
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(asyncio.wait_for(main(), 240))


def _chromium() -> str:
    import shutil

    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed: `make chromium` (as root) installs it")
    return path


def test_page_plays_in_a_real_browser_clip_and_live(served, tmp_path):
    """Headless chromium on the page: clip mode plays the fMP4 stream (the video element's time
    advances, frames decode, the screenshot shows the demo face); live mode receives WebRTC
    frames and audio (getStats). The screenshot goes to $TALKING_HEAD_SCREENSHOT when set."""
    import io

    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    url = served["http"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--autoplay-policy=no-user-gesture-required", "--disable-features=WebRtcHideLocalIpsWithMdns"])
        try:
            page = browser.new_page(viewport={"width": 800, "height": 900})
            page.goto(url + "/")
            page.fill("#key", KEY)
            page.click("#key-apply")
            page.wait_for_function("document.querySelectorAll('#subject option').length >= 3", timeout=30_000)
            options = page.eval_on_selector_all("#subject option", "os => os.map(o => o.value)")
            assert {"demo", "tiny-a"} <= set(options)

            # clip mode: the demo subject, played through Media Source Extensions as it streams
            page.select_option("#subject", "demo")
            page.fill("#text", "Hello! Thanks for calling, how can I help you today?")
            page.click("#speak")
            page.wait_for_function("document.getElementById('video').currentTime > 0.5", timeout=180_000)
            t1 = page.evaluate("document.getElementById('video').currentTime")
            # the stream may arrive slower than real time (CPU): playback waits, then goes on
            page.wait_for_function(f"document.getElementById('video').currentTime > {t1} + 0.3", timeout=120_000)
            quality = page.evaluate("document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames")
            assert quality > 10, quality
            shot = page.locator("#video").screenshot()
            img = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(np.float32)
            assert img.std() > 20 and img.mean() > 30, (img.mean(), img.std())  # a picture, not a black box
            target = os.environ.get("TALKING_HEAD_SCREENSHOT") or str(tmp_path / "live-page.png")
            page.screenshot(path=target, full_page=True)

            # live mode: a WebRTC session on the tiny subject, then speech on it
            page.check("input[name=mode][value=live]")
            page.select_option("#subject", "tiny-a")
            page.click("#live-start")

            def live_stats(enough: int, timeout_s: float = 60.0) -> dict:
                deadline = time.monotonic() + timeout_s
                while True:
                    stats = page.evaluate("window.liveStats()") or {}  # getStats, awaited
                    if min(stats.get("framesDecoded", 0), stats.get("audioPacketsReceived", 0)) >= enough \
                            or time.monotonic() > deadline:
                        return stats
                    page.wait_for_timeout(250)

            stats = live_stats(1)
            assert stats.get("framesDecoded", 0) > 0 and stats.get("audioPacketsReceived", 0) > 0, stats
            page.click("#speak")
            page.wait_for_function("window.pageState.events.some(e => e.state === 'speaking')", timeout=60_000)
            stats = live_stats(25)
            assert stats["framesDecoded"] >= 25 and stats["audioPacketsReceived"] >= 25, stats
            page.click("#live-stop")
            page.wait_for_function("window.pageState.session === null", timeout=10_000)
        finally:
            browser.close()
    # the page's DELETE may not outlive the closed browser; then the session ends when its peer is
    # found gone (ICE consent checks), and nothing may be left open after that
    deadline = time.monotonic() + 90
    while any(gauges := _live_gauges(url)) and time.monotonic() < deadline:
        time.sleep(1.0)
    assert gauges and not any(gauges), gauges
