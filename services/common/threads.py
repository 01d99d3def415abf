"""PyTorch's intra-op thread count for one block of code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Run the block on `n` intra-op threads (None: leave the count alone), then restore it.

    The count holds for the calling thread (and threads that start their first op inside
    the block); other threads that already ran an op keep theirs."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
