"""render_batches: a small first batch of its own, the same frames."""

import numpy as np
import pytest

from services.common.types import render_batches


class CountingRenderer:
    """Frame i is grey level codes[i, 0]; notes the batch sizes of each render call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def render(self, codes, poses, blinks, frames_per_batch=8, fps=None, exact=False):
        self.calls.append(frames_per_batch)
        for s in range(0, len(codes), frames_per_batch):
            part = codes[s:s + frames_per_batch, :1].astype(np.uint8)
            yield np.broadcast_to(part[:, :, None, None], (len(part), 2, 2, 3)).copy()


@pytest.mark.parametrize("n,first,sizes", [(20, 2, [2, 8, 8, 2]), (20, 0, [8, 8, 4]), (5, 2, [2, 3]),
                                           (2, 2, [2]), (20, 8, [8, 8, 4])])
def test_first_batch_of_its_own_and_the_same_frames(n, first, sizes):
    codes = np.arange(n, dtype=np.float32)[:, None].repeat(4, 1)
    poses, blinks = np.zeros((n, 4, 4)), np.zeros(n)
    r = CountingRenderer()
    batches = list(render_batches(r, codes, poses, blinks, frames_per_batch=8, first_batch=first))
    assert [len(b) for b in batches] == sizes
    np.testing.assert_array_equal(np.concatenate(batches)[:, 0, 0, 0], np.arange(n))
