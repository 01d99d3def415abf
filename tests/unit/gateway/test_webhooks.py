"""Webhooks: the SSRF policy, signatures, and delivery to a real receiver on loopback.

No test here sends a packet anywhere but 127.0.0.1/::1, even if the guard were broken:
policy cases for private, link-local and metadata addresses call the policy functions only
(IP literals parse without DNS; "localhost" comes from /etc/hosts), and every delivery goes
through `_deliver`, which asserts a loopback target before anything is sent.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from services.common.errors import InvalidInput
from services.gateway.webhooks import (DELIVERY_HEADER, SIGNATURE_HEADER, WebhookPolicy, WebhookRefused,
                                       WebhookSender, address_refusal, redact, signature, verify_signature)

LOOPBACK = {"127.0.0.1", "::1"}
SECRET = "s3cret"


# ---- address classification: pure, no network ------------------------------------------------
@pytest.mark.parametrize("address,reason", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.169.254", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("169.254.170.2", "a cloud metadata address"), ("100.100.100.200", "a cloud metadata address"),
    ("::ffff:169.254.169.254", "a cloud metadata address"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("::ffff:0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("64:ff9b::a00:1", "private"),
    ("2002:a00:1::1", "private"), ("2002:7f00:1::1", "loopback"),
    ("100.64.0.1", "not globally routable"), ("192.0.2.1", "private"), ("198.18.0.1", "private"),
    ("240.0.0.1", "private"), ("255.255.255.255", "private"), ("2001:db8::1", "private"),
])
def test_non_public_addresses_are_classified(address, reason):
    assert address_refusal(address) == reason
    assert address_refusal(ipaddress.ip_address(address.split("%")[0])) == reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111",
                                     "2a00:1450:4001:81c::200e"])
def test_public_unicast_addresses_pass(address):
    assert address_refusal(address) is None


# ---- URL policy: parsing and literal addresses only, no network ------------------------------
@pytest.mark.parametrize("url,words", [
    ("http://example.com/hook", "https"),
    ("ftp://example.com/hook", "https"),
    ("file:///etc/passwd", "https"),
    ("gopher://127.0.0.1:6379/_INFO", "https"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("https://token@example.com/hook", "credentials"),
    ("https:///hook", "no host"),
    ("https://example.com:99999/", "valid URL"),
    ("https://exa mple.com/", "without spaces"),
    ("https://example.com/\r\nX-Injected: 1", "without spaces"),
    ("https://example.com/" + "a" * 3000, "at most"),
    (42, "URL string"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://10.0.0.7/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[::ffff:a9fe:a9fe]/hook", "metadata"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://[ff02::1]/hook", "multicast"),
])
def test_default_policy_refuses(url, words):
    with pytest.raises(WebhookRefused, match=words):
        WebhookPolicy().check_url(url)


def test_refusals_are_invalid_input_and_good_urls_parse():
    assert issubclass(WebhookRefused, InvalidInput)  # at submission: 400
    t = WebhookPolicy().check_url("https://Hooks.Example.com./v1/done?x=1")
    assert (t.scheme, t.host, t.port, t.path) == ("https", "hooks.example.com", 443, "/v1/done?x=1")
    assert WebhookPolicy().check_url("https://8.8.8.8:8443").path == "/"


def test_allow_list_lifts_private_addresses_but_never_metadata_multicast_or_unspecified():
    policy = WebhookPolicy.from_dict({"allow_hosts": ["10.0.0.0/8", "hooks.internal", "127.0.0.1", "::1"],
                                      "allow_http": True})
    for url in ("http://10.9.8.7/h", "https://10.0.0.1/h", "http://127.0.0.1:8080/h", "http://[::1]:8080/h",
                "http://[::ffff:10.1.1.1]/h"):
        policy.check_url(url)
    target = policy.check_url("https://hooks.internal/h")  # a name: its addresses are checked at delivery
    policy.check_address(target, "192.168.7.7")  # listed by name: may resolve to a private address
    with pytest.raises(WebhookRefused, match="allow_hosts"):
        policy.check_address(policy.check_url("https://other.internal/h"), "192.168.7.7")
    for url in ("http://192.168.0.1/h", "http://169.254.169.254/", "http://[ff02::1]/", "http://0.0.0.0/"):
        with pytest.raises(WebhookRefused):
            policy.check_url(url)
    everything = WebhookPolicy.from_dict({"allow_hosts": ["0.0.0.0/0", "::/0"]})
    for url in ("https://169.254.169.254/", "https://[fd00:ec2::254]/", "https://224.0.0.1/", "https://0.0.0.0/"):
        with pytest.raises(WebhookRefused):
            everything.check_url(url)


def test_a_name_that_resolves_to_loopback_is_refused():
    # /etc/hosts: no DNS query, no packet
    policy = WebhookPolicy(allow_http=True)
    with pytest.raises(WebhookRefused, match="loopback"):
        policy.resolve(policy.check_url("http://localhost:1/hook"))
    assert WebhookPolicy.from_dict({"allow_hosts": ["localhost"], "allow_http": True}).resolve(
        policy.check_url("http://localhost:1/hook")) in LOOPBACK


@pytest.mark.parametrize("bad", [{"allow_hosts": "10.0.0.0/8"}, {"allow_hosts": [""]}, {"allow_http": "yes"},
                                 {"secret": 5}, {"timeout_s": 0}, {"retries": -1}, {"workers": 1.5},
                                 {"retry": 3}])
def test_policy_config_errors(bad):
    with pytest.raises(InvalidInput, match="webhooks"):
        WebhookPolicy.from_dict(bad)


# ---- signatures and redaction ---------------------------------------------------------------
def test_signature_verifies_and_detects_tampering_replay_and_the_wrong_secret():
    body = b'{"id":"x","status":"done"}'
    now = 1_700_000_000
    header = signature(SECRET, body, now)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(SECRET, header, body, now=now + 10)
    assert not verify_signature(SECRET, header, body + b" ", now=now)
    assert not verify_signature("other", header, body, now=now)
    assert not verify_signature(SECRET, header, body, now=now + 301)
    assert not verify_signature(SECRET, header.replace(f"t={now}", f"t={now + 1}"), body, now=now)
    assert not verify_signature(SECRET, "garbage", body, now=now)


def test_redacted_urls_hold_no_credentials_or_query():
    assert redact("https://user:pw@example.com:8443/hook?token=abc") == "https://***@example.com:8443/hook?…"
    assert redact("https://example.com/hook") == "https://example.com/hook"
    assert "pw" not in redact("http://u:pw@[::1]/x") and "[::1]" in redact("http://u:pw@[::1]/x")


# ---- delivery to a real receiver on loopback --------------------------------------------------
class Receiver:
    """A real HTTP server on loopback; `plan` holds how to answer each request in turn
    (status, or "drip"/"slow"), then 200."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[dict] = []
        self.plan: list = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                action = outer.plan.pop(0) if outer.plan else 200
                if action == "slow":
                    time.sleep(2)
                    action = 200
                if action == "drip":  # a byte every 0.2 s, for ever: no socket timeout ever fires
                    try:
                        for b in b"HTTP/1.1 200 OK\r\n" * 100:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(0.2)
                    except OSError:
                        return
                    return
                self.send_response(action)
                if action in (301, 302, 307):
                    self.send_header("Location", f"http://{host}:{outer.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        server_type = type("Server", (http.server.ThreadingHTTPServer,),
                           {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET,
                            "daemon_threads": True})
        self.server = server_type((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.host = host
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _deliver(sender: WebhookSender, url: str, payload: dict):
    assert urlsplit(url).hostname in LOOPBACK, "tests send to loopback only"
    return sender.deliver(url, payload)


def _allowing(**kw) -> WebhookSender:
    return WebhookSender(WebhookPolicy.from_dict({"allow_hosts": ["127.0.0.1", "::1"], "allow_http": True,
                                                  "secret": SECRET, "backoff_s": 0.01, **kw}))


def test_loopback_receiver_is_refused_by_default(receiver):
    for policy in (WebhookPolicy(), WebhookPolicy(allow_http=True)):  # http refused; then loopback refused
        result = _deliver(WebhookSender(policy), receiver.url(), {"id": "x"})
        assert not result.delivered and result.attempts == 0 and result.error
    assert receiver.requests == []


def test_allow_listed_receiver_gets_a_signed_delivery(receiver):
    payload = {"id": "abc", "status": "done", "frames": 12}
    result = _deliver(_allowing(), receiver.url("/hook?src=test"), payload)
    assert result.delivered and result.attempts == 1 and result.status == 200
    (req,) = receiver.requests
    assert req["path"] == "/hook?src=test" and json.loads(req["body"]) == payload
    assert req["headers"]["Host"] == f"127.0.0.1:{receiver.port}"
    assert req["headers"]["Content-Type"] == "application/json" and len(req["headers"][DELIVERY_HEADER]) == 32
    assert verify_signature(SECRET, req["headers"][SIGNATURE_HEADER], req["body"])
    assert not verify_signature("wrong", req["headers"][SIGNATURE_HEADER], req["body"])


def test_ipv6_loopback_receiver_when_allow_listed():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        r = Receiver("::1")
    except OSError:
        pytest.skip("no ::1 on this machine")
    try:
        assert not _deliver(WebhookSender(WebhookPolicy(allow_http=True)), r.url(), {}).delivered
        assert _deliver(_allowing(), r.url(), {"a": 1}).delivered and len(r.requests) == 1
    finally:
        r.close()


def test_5xx_is_retried_with_the_same_delivery_id_4xx_and_redirects_are_not(receiver):
    receiver.plan = [503, 500]
    result = _deliver(_allowing(), receiver.url(), {"n": 1})
    assert result.delivered and result.attempts == 3
    assert len({r["headers"][DELIVERY_HEADER] for r in receiver.requests}) == 1
    receiver.requests.clear()
    receiver.plan = [503] * 10
    result = _deliver(_allowing(retries=2), receiver.url(), {"n": 2})
    assert not result.delivered and result.attempts == 3 and result.status == 503
    receiver.requests.clear()
    receiver.plan = [302]
    result = _deliver(_allowing(), receiver.url(), {"n": 3})
    assert not result.delivered and result.attempts == 1 and result.status == 302
    assert [r["path"] for r in receiver.requests] == ["/hook"]  # the redirect was not followed
    receiver.requests.clear()
    receiver.plan = [404]
    assert _deliver(_allowing(), receiver.url(), {"n": 4}).attempts == 1


def test_a_slow_or_dripping_receiver_is_cut_off_at_the_deadline(receiver):
    for action in ("slow", "drip"):
        receiver.plan = [action]
        t0 = time.monotonic()
        result = _deliver(_allowing(timeout_s=0.6, retries=0), receiver.url(), {})
        assert not result.delivered and time.monotonic() - t0 < 1.5, (action, result)


def test_proxy_variables_are_ignored(receiver, monkeypatch):
    proxy = Receiver()
    try:
        for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(var, proxy.url(""))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert _deliver(_allowing(), receiver.url(), {}).delivered
        assert proxy.requests == [] and len(receiver.requests) == 1
    finally:
        proxy.close()


def test_the_sender_has_its_own_bounded_pool(receiver):
    receiver.plan = ["slow"] * 4
    sender = _allowing(workers=1, max_pending=2, timeout_s=5, retries=0)
    try:
        futures = [sender.submit(receiver.url(), {"i": i}) for i in range(4)]
        assert futures[0] is not None and futures[1] is not None and futures[2:] == [None, None]
        assert all(f.result(timeout=20).delivered for f in futures[:2])
        assert sum(t.name.startswith("webhook") for t in threading.enumerate()) == 1
    finally:
        sender.close()
