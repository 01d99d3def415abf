"""intra_op_threads: a thread count for one block, restored after it (also on errors)."""

import pytest
import torch

from services.common.threads import intra_op_threads


def test_count_inside_and_restored_after():
    outer = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with intra_op_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), intra_op_threads(1):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outer)


def test_none_leaves_the_count_alone():
    before = torch.get_num_threads()
    with intra_op_threads(None):
        assert torch.get_num_threads() == before
