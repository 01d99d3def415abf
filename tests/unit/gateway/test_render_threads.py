"""The renderer's intra-op threads: set by the app's `render_threads`, checked before deploying,
and what each rendered batch runs on."""

from __future__ import annotations

import pytest
import torch

from services.common.errors import InvalidInput
from services.gateway import serving


@pytest.mark.parametrize("bad", [-1, "2", 1.5, True])
def test_bad_render_threads_fail_before_deploying(bad):
    from services.gateway.app import build_app

    with pytest.raises(InvalidInput, match="render_threads"):
        build_app({"render_threads": bad})


def test_a_config_that_sets_render_threads_is_recognised():
    config = serving.read_config()
    assert not serving.sets_render_threads(config)
    config = serving.adapt_config(config, gpus=0, app_args={"render_threads": 2})
    assert serving.sets_render_threads(config)
    serving.validate(config)


def test_batches_render_on_the_replicas_threads(monkeypatch):
    from services.renderer.deployment import RendererDeployment

    monkeypatch.setenv("TALKING_HEAD_REDIS_URL", "")  # the local store only: no server needed
    cls = RendererDeployment.func_or_class
    before = torch.get_num_threads()

    def batches():
        while True:
            yield torch.get_num_threads()

    for threads, expected in ((3, 3), (0, before)):
        replica = cls(threads=threads)
        assert replica._next(batches()) == expected
        assert torch.get_num_threads() == before


def test_serve_refuses_negative_render_threads(capsys):
    from services.cli import main

    assert main(["serve", "--render-threads", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--render-threads" in err[0]


def test_concurrent_streams_share_the_render_threads(monkeypatch):
    from services.renderer.deployment import RendererDeployment

    monkeypatch.setenv("TALKING_HEAD_REDIS_URL", "")
    replica = RendererDeployment.func_or_class(threads=4)
    for active, expected in ((0, 4), (1, 4), (2, 2), (3, 1), (8, 1)):
        replica.stats_["active_renders"] = active
        assert replica.batch_threads() == expected
    assert RendererDeployment.func_or_class(threads=0).batch_threads() is None
