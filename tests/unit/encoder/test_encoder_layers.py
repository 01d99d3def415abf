"""FCResBlock residual projection and AudioAttNet-style temporal attention."""

import torch
from torch import nn

from services.encoder.layers import LEAKY_SLOPE, FCResBlock, TemporalAttention, fc_res_stack


def test_fc_res_block_projects_the_skip_only_when_sizes_differ():
    assert isinstance(FCResBlock(64, 64).skip, nn.Identity)
    proj = FCResBlock(512, 256).skip
    assert isinstance(proj, nn.Linear) and proj.weight.shape == (256, 512) and proj.bias is None


def test_fc_res_block_output_is_leaky_of_branch_plus_projected_input():
    torch.manual_seed(0)
    block = FCResBlock(8, 4)
    x = torch.randn(5, 8)
    with torch.no_grad():  # zero the branch: only the projected skip remains
        block.fc2.weight.zero_()
        block.fc2.bias.zero_()
    expected = torch.nn.functional.leaky_relu(x @ block.skip.weight.T, LEAKY_SLOPE)
    torch.testing.assert_close(block(x), expected)


def test_stack_512_to_64():
    stack = fc_res_stack((512, 256, 128, 64))
    assert stack(torch.randn(3, 512)).shape == (3, 64)
    assert [b.fc1.in_features for b in stack] == [512, 256, 128]


def test_temporal_attention_weights_sum_to_one_over_nine_frames():
    torch.manual_seed(0)
    att = TemporalAttention(64, radius=4)
    codes = torch.randn(20, 64)
    w = att.weights(codes)
    assert w.shape == (20, 9)
    torch.testing.assert_close(w.sum(-1), torch.ones(20))
    assert (w >= 0).all()
    out = att(codes)
    assert out.shape == (20, 64)


def test_temporal_attention_of_a_constant_sequence_is_that_constant():
    att = TemporalAttention(16, radius=4)
    codes = torch.randn(1, 16).repeat(12, 1)
    torch.testing.assert_close(att(codes), codes)


def test_temporal_attention_is_local():
    torch.manual_seed(1)
    att = TemporalAttention(8, radius=4)
    codes = torch.randn(30, 8)
    changed = codes.clone()
    changed[25] += 10.0  # frame 25 is more than 4 away from frame 10
    torch.testing.assert_close(att(codes)[10], att(changed)[10])
