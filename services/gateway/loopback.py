"""Keep a local Ray cluster's ports on loopback (Linux).

Ray's own servers (GCS, raylet, object manager, workers, agents) follow the node address;
on Linux that is the machine's LAN address unless Ray treats the node as a single-machine
cluster, as it does on macOS and Windows (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`): then the
node address is 127.0.0.1. What still binds the wildcard address (Serve's inter-deployment
gRPC server on every replica) is moved to loopback by a small preloaded `bind()` wrapper
(`csrc/loopback_bind.cpp`); the Serve proxy ports are left where their config puts them.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from services.common.native import build_shared

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("csrc") / "loopback_bind.cpp"
_FLAGS = ["-O2", "-fPIC", "-shared", "-std=c++17"]


def preload_library() -> Path:
    """The bind() wrapper as a shared object (built on first use); RuntimeError without a compiler."""
    return build_shared("th_loopback_bind", [_SOURCE], _FLAGS, libs=("-ldl",))


def keep_ray_on_loopback(public_ports: list[int]) -> bool:
    """Set this process's environment so that a Ray cluster it starts listens on loopback only,
    except for `public_ports`; True when every port is covered, False when only Ray's core is
    (no compiler for the wrapper, or not Linux). Explicit settings in the environment win."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if not sys.platform.startswith("linux"):
        return False
    if not _node_address_is_loopback():
        # a wrapped server on loopback that Ray then dials at the LAN address would hang ray.init
        log.warning("Ray's node address is not loopback here; its ports stay on all interfaces")
        return False
    try:
        lib = str(preload_library())
    except RuntimeError as exc:
        log.warning("Serve replicas' internal gRPC ports stay on all interfaces (%s)", exc)
        return False
    preload = os.environ.get("LD_PRELOAD", "")
    if lib not in preload.split():
        os.environ["LD_PRELOAD"] = f"{lib} {preload}".strip()
    os.environ["TALKING_HEAD_PUBLIC_PORTS"] = ",".join(str(p) for p in public_ports)
    return True


def _node_address_is_loopback() -> bool:
    """Does this process's Ray pick 127.0.0.1 as the node address of a cluster it starts?
    Ray reads the single-machine switch when it is first imported; a process that imported
    Ray before the environment was set gets the switch set on the loaded module too."""
    import ray._private.ray_constants as constants
    from ray._private import services

    if os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
        constants.ENABLE_RAY_CLUSTER = False
    return services.get_node_ip_address() in ("127.0.0.1", "::1", "localhost")

