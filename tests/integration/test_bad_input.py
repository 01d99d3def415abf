"""Bad input against the real server (Ray Serve, Redis; one Serve start for the module):
each case gets its one clear code over HTTP or gRPC, and /healthz still answers at once
afterwards. Then the async-job queue (positions, 429 + Retry-After when full, owner-only
jobs) and a signed webhook to a receiver on loopback (allow-listed for this module only)."""

from __future__ import annotations

import base64
import http.client
import http.server
import io
import json
import os
import threading
import time

import numpy as np
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

grpc = pytest.importorskip("grpc")
requests = pytest.importorskip("requests")

from services.protos.talkinghead.v1 import (avatar_pb2, avatar_pb2_grpc, common_pb2, stages_pb2,  # noqa: E402
                                            stages_pb2_grpc)

pytestmark = pytest.mark.integration
KEY, OTHER_KEY = "test-key-1", "test-key-2"
WEBHOOK_SECRET = "bad-input-webhook-secret"
MAX_AUDIO_S, MAX_BODY = 5, 2_000_000
SERVE_APP_ARGS = {
    "api_keys": [KEY, OTHER_KEY],
    "limits": {"max_audio_seconds": MAX_AUDIO_S, "max_body_bytes": MAX_BODY, "max_streams": 1, "max_queued_jobs": 2},
    "webhooks": {"allow_hosts": ["127.0.0.1"], "allow_http": True, "secret": WEBHOOK_SECRET, "backoff_s": 0.1},
}
HDR = {"Authorization": f"Bearer {KEY}"}
AUTH = (("authorization", f"Bearer {KEY}"),)
JOB = "0123456789abcdef0123456789abcdef"


def edit_serve_config(config):
    # one Avatar replica: the job queue and the stream slots are per replica
    for dep in config["applications"][0]["deployments"]:
        if dep["name"] == "Avatar":
            dep["autoscaling_config"].update(min_replicas=1, max_replicas=1)
    return config


def _wav(seconds: float, rate: int = 16_000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _healthy(served) -> None:
    t0 = time.monotonic()
    r = requests.get(f"{served['http']}/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] in ("ok", "degraded")
    assert time.monotonic() - t0 < 5


# ---- HTTP ---------------------------------------------------------------------------------------
# (case id, method, path, JSON body | raw bytes, headers (None: the good key), status, words in the error)
OVER_TEXT = "word " * 100
HTTP_CASES = [
    ("not-json", "POST", "/v1/videos", b"{text: hi", None, 400, "JSON"),
    ("json-array", "POST", "/v1/videos", ["hi"], None, 400, "JSON object"),
    ("unknown-field", "POST", "/v1/videos", {"text": "hi", "statc_pose": True}, None, 400, "unknown field"),
    ("text-not-string", "POST", "/v1/videos", {"text": 5}, None, 400, "text must be a string"),
    ("text-and-audio", "POST", "/v1/videos", {"text": "hi", "audio": _b64(_wav(1))}, None, 400, "exactly one"),
    ("no-input", "POST", "/v1/videos", {"subject": "tiny-a"}, None, 400, "exactly one"),
    ("empty-text", "POST", "/v1/videos", {"text": "  "}, None, 400, "empty"),
    ("text-over-limit", "POST", "/v1/videos", {"text": OVER_TEXT}, None, 429, "limit"),
    ("voice-list", "POST", "/v1/videos", {"text": "hi", "voice": ["joe"]}, None, 400, "voice must be a string"),
    ("fpc-string", "POST", "/v1/videos", {"text": "hi", "frames_per_chunk": "abc"}, None, 400, "frames_per_chunk"),
    ("fpc-infinity", "POST", "/v1/videos", b'{"text": "hi", "frames_per_chunk": Infinity}', None, 400, "JSON"),
    ("fpc-nan", "POST", "/v1/videos", b'{"text": "hi", "frames_per_chunk": NaN}', None, 400, "JSON"),
    ("fpc-huge-float", "POST", "/v1/videos", b'{"text": "hi", "frames_per_chunk": 1e999}', None, 400, "frames_per_chunk"),
    ("fpc-negative", "POST", "/v1/videos", {"text": "hi", "frames_per_chunk": -1}, None, 400, "frames_per_chunk"),
    ("fpc-too-big", "POST", "/v1/videos", {"text": "hi", "frames_per_chunk": 10**9}, None, 400, "frames_per_chunk"),
    ("fpc-fraction", "POST", "/v1/videos", {"text": "hi", "frames_per_chunk": 8.5}, None, 400, "frames_per_chunk"),
    ("seed-negative", "POST", "/v1/videos", {"text": "hi", "seed": -1}, None, 400, "seed"),
    ("seed-string", "POST", "/v1/videos", {"text": "hi", "seed": "7"}, None, 400, "seed"),
    ("seed-huge", "POST", "/v1/videos", {"text": "hi", "seed": 2**70}, None, 400, "seed"),
    ("static-pose-string", "POST", "/v1/videos", {"text": "hi", "static_pose": "false"}, None, 400, "static_pose"),
    ("static-pose-int", "POST", "/v1/videos", {"text": "hi", "static_pose": 0}, None, 400, "static_pose"),
    ("denoise-string", "POST", "/v1/videos", {"text": "hi", "denoise": "no"}, None, 400, "denoise"),
    ("lang-list", "POST", "/v1/videos", {"text": "hi", "lang": ["en"]}, None, 400, "lang must be a string"),
    ("lang-unknown", "POST", "/v1/videos", {"text": "hi", "lang": "fr"}, None, 400, "language"),
    ("subject-newline", "POST", "/v1/videos", {"text": "hi", "subject": "tiny-a\n"}, None, 400, "subject id"),
    ("subject-path", "POST", "/v1/videos", {"text": "hi", "subject": "../etc"}, None, 400, "subject id"),
    ("subject-number", "POST", "/v1/videos", {"text": "hi", "subject": 5}, None, 400, "subject"),
    ("subject-unknown", "POST", "/v1/videos", {"text": "hi", "subject": "nobody"}, None, 404, "nobody"),
    ("audio-not-base64", "POST", "/v1/videos", {"audio": "%%%"}, None, 400, "base64"),
    ("audio-not-string", "POST", "/v1/videos", {"audio": 12}, None, 400, "base64"),
    ("audio-not-audio", "POST", "/v1/videos", {"audio": _b64(b"not audio at all" * 20)}, None, 400, "decode"),
    ("audio-0.5s-over", "POST", "/v1/videos", {"audio": _b64(_wav(MAX_AUDIO_S + 0.5))}, None, 429, "limit"),
    ("audio-1s-over", "POST", "/v1/videos", {"audio": _b64(_wav(MAX_AUDIO_S + 1))}, None, 429, "limit"),
    ("audio-far-over", "POST", "/v1/videos", {"audio": _b64(_wav(40, 8_000))}, None, 429, "limit"),
    ("body-over-cap", "POST", "/v1/videos", {"text": "hi", "audio": "A" * MAX_BODY}, None, 413, "limit"),
    ("async-not-bool", "POST", "/v1/videos", {"text": "hi", "async": "yes"}, None, 400, "async"),
    ("webhook-without-async", "POST", "/v1/videos", {"text": "hi", "webhook": "https://example.com/h"}, None, 400,
     "async"),
    ("webhook-private", "POST", "/v1/videos", {"text": "hi", "async": True, "webhook": "http://10.0.0.1/h"}, None,
     400, "private"),
    ("webhook-metadata", "POST", "/v1/videos",
     {"text": "hi", "async": True, "webhook": "http://169.254.169.254/latest/meta-data/"}, None, 400, "metadata"),
    ("webhook-ipv6-loopback", "POST", "/v1/videos", {"text": "hi", "async": True, "webhook": "http://[::1]:1/h"},
     None, 400, "loopback"),
    ("webhook-credentials", "POST", "/v1/videos",
     {"text": "hi", "async": True, "webhook": "https://u:p@example.com/h"}, None, 400, "credentials"),
    ("webhook-scheme", "POST", "/v1/videos", {"text": "hi", "async": True, "webhook": "gopher://x/"}, None, 400,
     "https"),
    ("webhook-not-string", "POST", "/v1/videos", {"text": "hi", "async": True, "webhook": 7}, None, 400, "URL"),
    ("job-id-key-suffix", "GET", f"/v1/videos/{JOB}:mp4", None, None, 400, "job id"),
    ("job-id-not-hex", "GET", "/v1/videos/not-a-job", None, None, 400, "job id"),
    ("job-unknown", "GET", f"/v1/videos/{JOB}", None, None, 404, "unknown"),
    ("job-content-unknown", "GET", f"/v1/videos/{JOB}/content", None, None, 404, "unknown"),
    ("job-content-bad-id", "GET", f"/v1/videos/{JOB}:mp4/content", None, None, 400, "job id"),
    ("no-key", "POST", "/v1/videos", {"text": "hi"}, {}, 401, "API key"),
    ("bare-key", "POST", "/v1/videos", {"text": "hi"}, {"Authorization": KEY}, 401, "Bearer"),
    ("wrong-key", "POST", "/v1/videos", {"text": "hi"}, {"Authorization": "Bearer nope"}, 401, "invalid"),
    ("subjects-no-key", "GET", "/v1/subjects", None, {}, 401, "API key"),
    ("docs-off", "GET", "/docs", None, None, 404, "not found"),
    ("redoc-off", "GET", "/redoc", None, None, 404, "not found"),
    ("openapi-off", "GET", "/openapi.json", None, None, 404, "not found"),
]


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_http_bad_input(served, case):
    _, method, path, body, headers, status, words = case
    headers = HDR if headers is None else headers
    kw = {"data": body, "headers": {**headers, "Content-Type": "application/json"}} if isinstance(body, bytes) \
        else {"json": body, "headers": headers}
    r = requests.request(method, served["http"] + path, timeout=60, **kw)
    assert r.status_code == status, r.text
    assert words.lower() in r.json()["error"].lower(), r.text
    _healthy(served)


def test_http_body_over_the_cap_without_content_length(served):
    # chunked: no Content-Length to refuse by, so the cap is counted while reading
    conn = http.client.HTTPConnection(served["http"].split("//")[1].split(":")[0], int(served["http"].rsplit(":", 1)[1]),
                                      timeout=60)
    conn.putrequest("POST", "/v1/videos")
    conn.putheader("Authorization", f"Bearer {KEY}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    piece = b"A" * 100_000
    try:
        for _ in range(MAX_BODY // len(piece) + 5):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before the whole body is sent
    r = conn.getresponse()
    assert r.status == 413, r.read()
    conn.close()
    _healthy(served)


# ---- gRPC ---------------------------------------------------------------------------------------
def _pcm(seconds: float, rate: int = 16_000) -> common_pb2.AudioClip:
    return common_pb2.AudioClip(pcm_f32le=np.zeros(int(seconds * rate), "<f4").tobytes(), sample_rate=rate)


S = grpc.StatusCode
GRPC_SPEAK_CASES = [
    ("no-key", dict(text="hi"), (), S.UNAUTHENTICATED),
    ("bare-key", dict(text="hi"), (("authorization", KEY),), S.UNAUTHENTICATED),
    ("wrong-key", dict(text="hi"), (("authorization", "Bearer nope"),), S.UNAUTHENTICATED),
    ("empty-text", dict(text="  "), AUTH, S.INVALID_ARGUMENT),
    ("no-input", dict(), AUTH, S.INVALID_ARGUMENT),
    ("text-over-limit", dict(text=OVER_TEXT), AUTH, S.RESOURCE_EXHAUSTED),
    ("lang-unknown", dict(text="hi", lang="fr"), AUTH, S.INVALID_ARGUMENT),
    ("subject-newline", dict(text="hi", subject="tiny-a\n"), AUTH, S.INVALID_ARGUMENT),
    ("subject-unknown", dict(text="hi", subject="nobody"), AUTH, S.NOT_FOUND),
    ("frames-per-chunk", dict(text="hi", frames_per_chunk=100_000), AUTH, S.INVALID_ARGUMENT),
    ("fps", dict(text="hi", fps=30), AUTH, S.INVALID_ARGUMENT),
    ("pcm-0.5s-over", dict(audio=_pcm(MAX_AUDIO_S + 0.5)), AUTH, S.RESOURCE_EXHAUSTED),
    ("pcm-1s-over", dict(audio=_pcm(MAX_AUDIO_S + 1)), AUTH, S.RESOURCE_EXHAUSTED),
    ("wav-0.5s-over", dict(audio=common_pb2.AudioClip(encoded=_wav(MAX_AUDIO_S + 0.5))), AUTH, S.RESOURCE_EXHAUSTED),
    ("wav-1s-over", dict(audio=common_pb2.AudioClip(encoded=_wav(MAX_AUDIO_S + 1))), AUTH, S.RESOURCE_EXHAUSTED),
    ("encoded-over-byte-cap", dict(audio=common_pb2.AudioClip(encoded=b"\0" * (MAX_BODY + 1))), AUTH,
     S.RESOURCE_EXHAUSTED),
    ("pcm-odd-bytes", dict(audio=common_pb2.AudioClip(pcm_f32le=b"abc", sample_rate=16_000)), AUTH,
     S.INVALID_ARGUMENT),
    ("pcm-no-rate", dict(audio=common_pb2.AudioClip(pcm_f32le=b"\0" * 400)), AUTH, S.INVALID_ARGUMENT),
    ("encoded-not-audio", dict(audio=common_pb2.AudioClip(encoded=b"not audio" * 30)), AUTH, S.INVALID_ARGUMENT),
    ("audio-empty", dict(audio=common_pb2.AudioClip()), AUTH, S.INVALID_ARGUMENT),
]


@pytest.mark.parametrize("case", GRPC_SPEAK_CASES, ids=[c[0] for c in GRPC_SPEAK_CASES])
def test_grpc_speak_bad_input(served, case):
    _, fields, metadata, code = case
    fields = {"subject": "tiny-a", **fields}
    stub = avatar_pb2_grpc.AvatarStub(served["channel"])
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Speak(avatar_pb2.SpeakRequest(**fields), metadata=metadata, timeout=60))
    assert e.value.code() == code, e.value.details()
    assert "Traceback" not in (e.value.details() or "")
    _healthy(served)


def _codes(n_frames: int) -> common_pb2.AudioCodes:
    return common_pb2.AudioCodes(n_frames=n_frames, dim=64, fps=25, values_f32le=b"")


GRPC_OTHER_CASES = [
    ("get-subject-newline", lambda ch: avatar_pb2_grpc.AvatarStub(ch).GetSubject(
        avatar_pb2.GetSubjectRequest(id="tiny-a\n"), metadata=AUTH, timeout=30), S.INVALID_ARGUMENT),
    ("get-subject-no-key", lambda ch: avatar_pb2_grpc.AvatarStub(ch).GetSubject(
        avatar_pb2.GetSubjectRequest(id="tiny-a"), timeout=30), S.UNAUTHENTICATED),
    ("synthesize-over-limit", lambda ch: stages_pb2_grpc.TtsStub(ch).Synthesize(
        stages_pb2.SynthesizeRequest(text=OVER_TEXT, lang="en"), metadata=AUTH, timeout=30), S.RESOURCE_EXHAUSTED),
    ("encode-over-limit", lambda ch: stages_pb2_grpc.EncoderStub(ch).Encode(
        stages_pb2.EncodeRequest(audio=_pcm(MAX_AUDIO_S + 0.5), subject="tiny-a"), metadata=AUTH, timeout=30),
     S.RESOURCE_EXHAUSTED),
    ("enhance-over-limit", lambda ch: stages_pb2_grpc.DenoiseStub(ch).Enhance(
        stages_pb2.EnhanceRequest(audio=_pcm(MAX_AUDIO_S + 1)), metadata=AUTH, timeout=30), S.RESOURCE_EXHAUSTED),
    ("render-too-many-frames", lambda ch: list(stages_pb2_grpc.RendererStub(ch).Render(
        stages_pb2.RenderRequest(subject="tiny-a", codes=_codes(MAX_AUDIO_S * 25 + 1)), metadata=AUTH, timeout=30)),
     S.RESOURCE_EXHAUSTED),
    ("render-batch-too-big", lambda ch: list(stages_pb2_grpc.RendererStub(ch).Render(
        stages_pb2.RenderRequest(subject="tiny-a", codes=_codes(4), frames_per_batch=10_000), metadata=AUTH,
        timeout=30)), S.INVALID_ARGUMENT),
]


@pytest.mark.parametrize("case", GRPC_OTHER_CASES, ids=[c[0] for c in GRPC_OTHER_CASES])
def test_grpc_other_bad_input(served, case):
    _, call, code = case
    with pytest.raises(grpc.RpcError) as e:
        call(served["channel"])
    assert e.value.code() == code, e.value.details()
    _healthy(served)


# ---- async jobs: a bounded queue, owner-only, signed webhooks ------------------------------------
class Receiver:
    """A webhook receiver on 127.0.0.1 (a real http.server thread)."""

    def __init__(self) -> None:
        self.got: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.got.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/done"


def _wait_done(served, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while True:
        status = requests.get(f"{served['http']}/v1/videos/{job_id}", headers=HDR, timeout=10).json()
        if status["status"] in ("done", "failed"):
            return status
        assert time.time() < deadline, status
        time.sleep(0.3)


def test_job_queue_is_bounded_owner_only_and_webhooks_are_signed(served):
    from services.gateway.webhooks import SIGNATURE_HEADER, verify_signature

    url = served["http"]
    receiver = Receiver()
    try:
        text = " ".join(["This sentence keeps the renderer busy for a while."] * 4)  # ≈ 300 frames
        post = lambda body: requests.post(f"{url}/v1/videos", json=body, headers=HDR, timeout=30)  # noqa: E731
        first = post({"text": text, "subject": "tiny-a", "async": True, "webhook": receiver.url})
        assert first.status_code == 202, first.text
        time.sleep(0.5)  # the job takes the one stream slot
        busy = requests.post(f"{url}/v1/videos", json={"text": "hi", "subject": "tiny-a"}, headers=HDR, timeout=30)
        assert busy.status_code == 429 and int(busy.headers["Retry-After"]) > 0, busy.text
        with pytest.raises(grpc.RpcError) as e:
            list(avatar_pb2_grpc.AvatarStub(served["channel"]).Speak(
                avatar_pb2.SpeakRequest(text="hi", subject="tiny-a"), metadata=AUTH, timeout=30))
        assert e.value.code() == S.RESOURCE_EXHAUSTED
        assert "retry in" in e.value.details()  # Ray's proxy sends no trailing metadata with errors
        queued = [post({"text": "Hi there.", "subject": "tiny-a", "async": True}) for _ in range(2)]
        assert [q.status_code for q in queued] == [202, 202], [q.text for q in queued]
        assert [q.json()["position"] for q in queued] == [1, 2] and queued[0].json()["status"] == "queued"
        full = post({"text": "Hi there.", "subject": "tiny-a", "async": True})
        assert full.status_code == 429 and int(full.headers["Retry-After"]) > 0 and "queue" in full.json()["error"]
        _healthy(served)

        jobs = [first.json()["id"]] + [q.json()["id"] for q in queued]
        assert [_wait_done(served, j)["status"] for j in jobs] == ["done"] * 3
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        assert requests.get(f"{url}/v1/videos/{jobs[0]}", headers=other, timeout=10).status_code == 404
        assert requests.get(f"{url}/v1/videos/{jobs[0]}/content", headers=other, timeout=10).status_code == 404
        assert requests.get(f"{url}/v1/videos/{jobs[0]}/content", headers=HDR, timeout=10).content[4:8] == b"ftyp"

        deadline = time.time() + 30
        while not receiver.got:
            assert time.time() < deadline, "no webhook arrived"
            time.sleep(0.2)
        (headers, body), = receiver.got
        assert verify_signature(WEBHOOK_SECRET, headers[SIGNATURE_HEADER], body)
        payload = json.loads(body)
        assert payload["id"] == jobs[0] and payload["status"] == "done" and "owner" not in payload
    finally:
        receiver.server.shutdown()
