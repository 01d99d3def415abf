"""Listing subjects never fails because Redis is: refused or hung, it answers the local
subjects with `degraded`, in about one Redis timeout whatever the number of subjects.
Only loopback sockets: a closed port, and a listening one that never answers."""

from __future__ import annotations

import socket
import time

import pytest

from services.common.bundle import make_bundle
from services.common.errors import Unavailable
from services.common.subject_source import SubjectSource
from services.common.subject_store import LocalSubjectStore

N_LOCAL = 12


@pytest.fixture
def local(tmp_path):
    store = LocalSubjectStore(tmp_path / "subjects", bundled=None)
    for i in range(N_LOCAL):
        blobs = {"model.safetensors": b"w%d" % i, "background.png": b"png", "tracks.safetensors": b"t"}
        store.save(make_bundle(f"local-{i:02d}", blobs, fps=25, resolution=[32, 32]))
    return store


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hung_port():
    """Accepts connections (the kernel's backlog) and never answers: a hung Redis."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield s.getsockname()[1]
    s.close()


def test_redis_refused_lists_the_local_subjects_degraded(local, closed_port):
    source = SubjectSource(f"redis://127.0.0.1:{closed_port}/0", local=local)
    t0 = time.monotonic()
    listing = source.listing(manifests=True)
    assert time.monotonic() - t0 < 1.0
    assert listing.degraded and listing.ids == [f"local-{i:02d}" for i in range(N_LOCAL)]
    assert [m["id"] for m in listing.manifests.values()] == listing.ids
    assert source.ids() == listing.ids and not source.healthy()


def test_redis_hung_costs_one_timeout_not_one_per_subject(local, hung_port):
    timeout = 0.4
    source = SubjectSource(f"redis://127.0.0.1:{hung_port}/0", local=local, timeout_s=timeout,
                           connect_timeout_s=timeout)
    t0 = time.monotonic()
    listing = source.listing(manifests=True)
    took = time.monotonic() - t0
    assert listing.degraded and len(listing.manifests) == N_LOCAL
    assert took < 3 * timeout, f"{took:.2f} s for {N_LOCAL} subjects with a {timeout} s timeout"


def test_no_redis_is_not_degraded(local):
    listing = SubjectSource("", local=local).listing(manifests=True)
    assert not listing.degraded and len(listing.manifests) == N_LOCAL


def test_the_store_error_names_no_address(closed_port):
    source = SubjectSource(f"redis://:s3cret@127.0.0.1:{closed_port}/0", local=LocalSubjectStore(bundled=None))
    with pytest.raises(Unavailable) as e:
        source.load("someone")
    assert "unreachable" in e.value.message
    assert str(closed_port) not in e.value.message and "s3cret" not in e.value.message
