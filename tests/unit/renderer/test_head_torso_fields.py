"""Tri-plane head field, pseudo-3D torso, and batched whole-frame rendering."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from services.renderer.head_field import HeadCond, HeadField, HeadFieldConfig
from services.renderer.rays import Intrinsics, nerf_matrix_to_ngp
from services.renderer.renderer import TalkingHeadModel, render_frames
from services.renderer.torso_field import TorsoField, TorsoFieldConfig

SMALL = HeadFieldConfig(num_levels=4, base_resolution=16, desired_resolution=64, log2_hashmap_size=10, audio_dim=8, num_latents=3)
SMALL_TORSO = TorsoFieldConfig(num_levels=4, desired_resolution=128, log2_hashmap_size=10)


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    # trained-like grid magnitudes, so features (and images) actually vary
    gen = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if name.endswith("embeddings"):
            p.data.copy_(torch.rand(p.shape, generator=gen) * 2 - 1)


def test_er_nerf_sized_head_has_the_published_structure() -> None:
    cfg = HeadFieldConfig(num_levels=12, audio_dim=32, num_latents=1)
    head = HeadField(cfg)
    assert head.encoder.output_dim == 36
    grids = sum(g.embeddings.numel() for g in head.encoder.grids)
    assert grids == 3 * (4232 + 6248 + 9032 + 13000 + 8 * 16384)
    mlps = sum(p.numel() for n, p in head.named_parameters() if "encoder" not in n and n != "latents")
    # att 36-64-32, eye 36-16-1, sigma 69-64-64-65, colour 84-64-3, all without bias
    assert mlps == (36 * 64 + 64 * 32) + (36 * 16 + 16) + (69 * 64 + 64 * 64 + 64 * 65) + (84 * 64 + 64 * 3)
    assert all(not n.endswith("bias") for n, _ in head.named_parameters())
    json.dumps(head.manifest())


def test_head_field_equals_er_nerf_concatenated_form() -> None:
    head = HeadField(SMALL)
    _randomise(head)
    gen = torch.Generator().manual_seed(1)
    n = 300
    x = torch.rand(n, 3, generator=gen) * 2 - 1
    d = F.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    cond = HeadCond(audio=torch.randn(2, 8, generator=gen), eye=torch.rand(2, generator=gen), latent=torch.tensor([2, 1]))
    frame = torch.randint(0, 2, (n,), generator=gen)
    out = head(x, d, cond, frame)
    # the textbook form: cat inputs, run the Sequential MLPs
    enc_x = head.encoder(x)
    att = head.audio_att(enc_x)
    eye = cond.eye[frame, None] * torch.sigmoid(head.eye_att(enc_x))
    h = head.sigma_net(torch.cat([enc_x, cond.audio[frame] * att, eye], dim=-1))
    code = head.latents[cond.latent[frame]]
    rgb = torch.sigmoid(head.color_net(torch.cat([head.dir_encoder(d), h[:, 1:], code], dim=-1))) * 1.002 - 0.001
    torch.testing.assert_close(out["sigma"], torch.exp(h[:, 0]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["rgb"], rgb, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["ambient_aud"], att.norm(dim=-1), rtol=1e-5, atol=1e-6)
    assert torch.all(out["sigma"] > 0)
    with torch.no_grad():  # the in-place inference path computes the same
        fast = head(x, d, cond, frame)
    for k in ("sigma", "rgb", "ambient_aud", "ambient_eye"):
        torch.testing.assert_close(fast[k], out[k].detach(), rtol=1e-5, atol=1e-6)
    # every parameter (and the audio code) gets a gradient
    cond.audio.requires_grad_(True)
    out = head(x, d, cond, frame)
    (out["rgb"].sum() + out["sigma"].sum()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert cond.audio.grad.abs().sum() > 0


def test_torso_field_deforms_with_pose_and_trains() -> None:
    torso = TorsoField()
    _randomise(torso)
    pose = torch.eye(4).repeat(2, 1, 1)
    pose[:, 2, 3] = -3.0  # anchors in front of the camera
    pose[1, 0, 3] = 0.2
    xy = torch.rand(100, 2) * 2 - 1
    frame = torch.cat([torch.zeros(50, dtype=torch.long), torch.ones(50, dtype=torch.long)])
    anchors = torso.project_anchors(pose)
    assert anchors.shape == (2, 6) and not torch.allclose(anchors[0], anchors[1])
    # hand projection of the first anchor for frame 0: camera-space (0.01, 0.01, 3.1)
    torch.testing.assert_close(anchors[0, :2], torch.tensor([0.01 / 3.1, 0.01 / 3.1]))
    out = torso(xy, pose, frame)
    assert out["rgb"].shape == (100, 3) and out["alpha"].shape == (100,)
    assert torch.all((out["alpha"] > -0.002) & (out["alpha"] < 1.002))
    (out["rgb"].sum() + out["alpha"].sum()).backward()
    # the deformation net learns through the grid's input gradient
    assert torso.deform_net[0].weight.grad.abs().sum() > 0
    assert torso.anchors.grad.abs().sum() > 0


def test_batch_of_frames_renders_like_single_frames() -> None:
    model = TalkingHeadModel(head=SMALL, torso=SMALL_TORSO, occupancy_resolution=16)
    _randomise(model)
    pose = torch.eye(4).repeat(2, 1, 1)
    pose[:, 2, 3] = 0.9
    pose[1, 0, 3] = 0.05
    c2w = nerf_matrix_to_ngp(pose)
    intr = Intrinsics(fx=30.0, fy=30.0, cx=6.0, cy=6.0, height=12, width=12)
    cond = HeadCond(audio=torch.randn(2, 8), eye=torch.tensor([0.1, 0.9]))
    bg = torch.rand(2, 12, 12, 3)
    with torch.no_grad():
        both = model.render_frames(c2w, intr, cond, background=bg)
        singles = [
            model.render_frames(c2w[i : i + 1], intr, HeadCond(cond.audio[i : i + 1], cond.eye[i : i + 1]), background=bg[i : i + 1])
            for i in range(2)
        ]
    assert both["image"].shape == (2, 12, 12, 3) and both["depth"].shape == (2, 12, 12)
    assert torch.isfinite(both["image"]).all()
    for i in range(2):
        for k in ("image", "head_alpha", "depth", "torso_alpha"):
            torch.testing.assert_close(both[k][i], singles[i][k][0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(both["image"][0], both["image"][1])
    # small chunks give the same frames (memory is bounded by the chunk, not the batch)
    cfg = model.render_config
    with torch.no_grad():
        chunked = render_frames(model.head, c2w, intr, cond, model.occupancy, bg, model.torso, config=type(cfg)(chunk=50))
    torch.testing.assert_close(chunked["image"], both["image"], rtol=1e-5, atol=1e-6)
    # optional reduced-precision MLPs stay close to float32
    with torch.no_grad():
        low = render_frames(model.head, c2w, intr, cond, model.occupancy, bg, model.torso, config=type(cfg)(autocast_dtype="bfloat16"))
    assert float((low["image"] - both["image"]).abs().mean()) < 0.01
    # training path: gradients reach head and torso through the composite
    out = model.render_frames(c2w[:1], intr, HeadCond(cond.audio[:1], cond.eye[:1]), background=bg[:1], perturb=True)
    out["image"].mean().backward()
    assert model.head.sigma_net[0].weight.grad.abs().sum() > 0
    assert model.torso.net[0].weight.grad.abs().sum() > 0


def test_occupancy_update_from_head_and_manifest() -> None:
    model = TalkingHeadModel(head=SMALL, torso=SMALL_TORSO, occupancy_resolution=16)
    model.update_occupancy(HeadCond(audio=torch.randn(1, 8), eye=torch.rand(1)))
    assert int(model.occupancy.updates) == 1 and model.occupancy.density.min() >= 0
    manifest = json.loads(json.dumps(model.manifest()))
    assert manifest["head"]["encoder"]["grid"]["kind"] == "torch-ngp"
    assert manifest["torso"]["grid"]["gridtype"] == "tiled"


def test_param_groups_split_grid_tables_from_networks() -> None:
    model = TalkingHeadModel(head=SMALL, torso=SMALL_TORSO, occupancy_resolution=16)
    for part, field, grid in (("head", model.head, model.head.encoder), ("torso", model.torso, model.torso.grid)):
        groups = model.param_groups(part)
        assert list(groups) == ["grid", "net"]
        assert [id(p) for p in groups["grid"]] == [id(p) for p in grid.parameters()]
        # every parameter in exactly one group
        both = [id(p) for p in groups["grid"] + groups["net"]]
        assert len(set(both)) == len(both) and sorted(both) == sorted(id(p) for p in field.parameters())
    assert any(p is model.head.latents for p in model.param_groups("head")["net"])
    with pytest.raises(ValueError):
        TalkingHeadModel(head=SMALL, with_torso=False).param_groups("torso")


def test_render_pixels_matches_full_frames() -> None:
    model = TalkingHeadModel(head=SMALL, torso=SMALL_TORSO, occupancy_resolution=16)
    _randomise(model)
    pose = torch.eye(4)[None]
    pose[0, 2, 3] = 0.9
    c2w = nerf_matrix_to_ngp(pose)
    intr = Intrinsics(fx=30.0, fy=30.0, cx=6.0, cy=6.0, height=12, width=12)
    cond = HeadCond(audio=torch.randn(1, 8), eye=torch.rand(1))
    bg = torch.rand(12, 12, 3)
    with torch.no_grad():
        full = model.render_frames(c2w, intr, cond, background=bg)
    flat = torch.randperm(144)[:40]
    part = model.render_pixels(c2w, intr, flat, cond, background=bg.reshape(-1, 3)[flat], perturb=False)
    torch.testing.assert_close(part["image"].detach(), full["image"].reshape(-1, 3)[flat], rtol=1e-5, atol=1e-6)
    assert {"ambient_aud", "torso_alpha", "deform"} <= set(part)
    # a chunk whose rays all miss the head still reports every output
    centres = model.occupancy.cell_centers()
    model.occupancy.set_density(torch.where(centres.norm(dim=-1) < 0.3, 50.0, 0.0))
    with torch.no_grad():
        out = render_frames(model.head, c2w, intr, cond, model.occupancy, bg, config=type(model.render_config)(chunk=16))
    assert out["ambient_aud"].shape == (1, 12, 12) and out["samples"][0, 0, 0] == 0 and out["samples"].sum() > 0


@pytest.mark.gpu
def test_cuda_render_matches_cpu() -> None:
    model = TalkingHeadModel(head=SMALL, torso=SMALL_TORSO, occupancy_resolution=16)
    _randomise(model)
    pose = torch.eye(4)[None]
    pose[0, 2, 3] = 0.9
    c2w = nerf_matrix_to_ngp(pose)
    intr = Intrinsics(fx=30.0, fy=30.0, cx=6.0, cy=6.0, height=12, width=12)
    cond = HeadCond(audio=torch.randn(1, 8), eye=torch.rand(1))
    with torch.no_grad():
        cpu = model.render_frames(c2w, intr, cond)
        model.cuda()
        gpu = model.render_frames(c2w.cuda(), intr, cond.to("cuda"))
    torch.testing.assert_close(gpu["image"].cpu(), cpu["image"], rtol=1e-4, atol=1e-4)
