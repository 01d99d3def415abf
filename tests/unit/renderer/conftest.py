"""Renderer tests use tiny tensors: one intra-op thread is faster for them and keeps
them immune to OpenMP barrier stalls when other jobs share the cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
