"""Where live sessions run under Ray Serve, and how a call reaches the one holding a session.

Serve routes each HTTP request to any Avatar replica, but a session's peer connection lives
in one process. So each Avatar replica starts one `LiveHost` actor — named, on the replica's
own node, owned by the replica (it ends with it) — that holds the replica's sessions and
their peer connections (UDP on that node). A session id starts with its host's tag (8 hex
digits), so whichever replica a speak, interrupt, status or delete lands on, `LiveRouter`
finds the host by name and forwards the call: session affinity without sticky routing.

Inside the host, `LiveSessions` runs as in-process (tests use it directly), its pipeline's
stages answered by the Tts/Denoise/Encoder/Renderer deployments.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from services.common.errors import InvalidInput, NotFound, Unavailable
from services.common.rpc import as_project_error
from services.gateway.live.session import SESSION_ID, LiveSessions, check_live_installed
from services.gateway.request import Limits, SpeakRequest

#: Ray actor names of the hosts: this prefix and the host's tag.
HOST_NAME_PREFIX = "talking-head-live-"
TAG_DIGITS = 8


class LiveHost:
    """One Avatar replica's live sessions (a Ray actor: `LiveRouter.start` creates it)."""

    def __init__(self, tag: str, app_name: str, limits: dict, ice_servers: list[dict] | None) -> None:
        from ray import serve

        from services.gateway.app import RemoteStages
        from services.gateway.metrics import GatewayMetrics, LiveMetrics
        from services.gateway.pipeline import Pipeline

        lim = Limits.from_dict(limits)
        handles = [serve.get_deployment_handle(n, app_name) for n in ("Tts", "Denoise", "Encoder", "Renderer")]
        # the stage metrics of live speech stay here (the Avatar's /metrics shows the live ones)
        stages = RemoteStages(*handles, metrics=GatewayMetrics())
        self.sessions = LiveSessions(Pipeline(stages, limits=lim), lim, LiveMetrics(), ice_servers=ice_servers,
                                     id_prefix=tag)

    async def create(self, offer_sdp: Any, subject: Any, owner: str) -> tuple[str, str]:
        return await self.sessions.create(offer_sdp, subject, owner)

    async def speak(self, sid: str, req: SpeakRequest, owner: str) -> dict:
        return self.sessions.speak(sid, req, owner)

    async def interrupt(self, sid: str, owner: str) -> dict:
        return self.sessions.interrupt(sid, owner)

    async def info(self, sid: str, owner: str) -> dict:
        return self.sessions.info(sid, owner)

    async def end(self, sid: str, owner: str) -> None:
        await self.sessions.end(sid, owner)

    async def events(self, sid: str, owner: str) -> AsyncIterator[dict]:
        async for ev in self.sessions.events(sid, owner):
            yield ev

    async def exposition(self) -> bytes:
        return self.sessions.metrics.exposition()


class LiveRouter:
    """The Avatar's side: its own host for new sessions, any replica's host (by the tag in
    the session id) for calls on an existing one. Project errors raised in a host come back
    as themselves; a host that is gone (its replica stopped) makes its sessions unknown."""

    def __init__(self, app_name: str, limits: Limits, ice_servers: list[dict] | None) -> None:
        self.tag = secrets.token_hex(TAG_DIGITS // 2)
        self._start_args = (self.tag, app_name, {k: getattr(limits, k) for k in limits.__dataclass_fields__},
                            ice_servers)
        self.own: Any = None  # started with the first session (it loads the pipeline's code)
        self._hosts: dict[str, Any] = {}

    def _own(self) -> Any:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if self.own is None:
            self.own = ray.remote(LiveHost).options(
                name=HOST_NAME_PREFIX + self.tag, num_cpus=0, max_concurrency=1000,
                # the peers' UDP ports are on the node of the replica that answered the offer
                scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                   soft=False),
            ).remote(*self._start_args)
            self._hosts[self.tag] = self.own
        return self.own

    def _host(self, sid: Any) -> Any:
        import ray

        if not isinstance(sid, str) or not SESSION_ID.fullmatch(sid):
            raise InvalidInput("a session id is 32 lower-case hex digits")
        tag = sid[:TAG_DIGITS]
        host = self._hosts.get(tag)
        if host is None:
            try:
                host = ray.get_actor(HOST_NAME_PREFIX + tag)
            except ValueError:
                raise NotFound(f"no live session {sid} (ended, or never opened)") from None
            self._hosts[tag] = host
        return host

    async def _call(self, host: Any, method: str, *args: Any) -> Any:
        from ray.exceptions import RayActorError

        try:
            return await getattr(host, method).remote(*args)
        except RayActorError:
            self._hosts = {t: h for t, h in self._hosts.items() if h is not host}
            if host is self.own:  # the next session starts a new host
                self.own = None
            if method == "create":
                raise Unavailable("the live session host stopped; retry") from None
            raise NotFound("no such live session: the replica that held it stopped") from None
        except Exception as exc:
            err = as_project_error(exc)
            if err is not None:
                raise err from None
            raise

    async def create(self, offer_sdp: Any, subject: Any, owner: str = "") -> tuple[str, str]:
        check_live_installed()
        from services.gateway.live.peer import check_offer

        check_offer(offer_sdp)  # a bad offer is refused before a host is started for it
        return await self._call(self._own(), "create", offer_sdp, subject, owner)

    async def speak(self, sid: Any, req: SpeakRequest, owner: str = "") -> dict:
        return await self._call(self._host(sid), "speak", sid, req, owner)

    async def interrupt(self, sid: Any, owner: str = "") -> dict:
        return await self._call(self._host(sid), "interrupt", sid, owner)

    async def info(self, sid: Any, owner: str = "") -> dict:
        return await self._call(self._host(sid), "info", sid, owner)

    async def end(self, sid: Any, owner: str = "") -> None:
        await self._call(self._host(sid), "end", sid, owner)

    async def events(self, sid: Any, owner: str = "") -> AsyncIterator[dict]:
        """The session's events until it ends (a Ray streaming call to its host)."""
        from ray.exceptions import RayActorError

        stream = self._host(sid).events.options(num_returns="streaming").remote(sid, owner)
        try:
            async for ref in stream:
                yield await ref
        except RayActorError:
            return  # the host stopped: its sessions ended
        except Exception as exc:
            err = as_project_error(exc)
            if err is not None:
                raise err from None
            raise
        finally:
            import ray

            ray.cancel(stream)

    async def exposition(self) -> bytes:
        """The live metrics of this replica's sessions (empty before the first)."""
        return b"" if self.own is None else await self._call(self.own, "exposition")
