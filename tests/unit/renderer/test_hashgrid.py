"""Hash grid: torch-ngp rules by known answers, gradients, and fast path == reference."""

from __future__ import annotations

import pytest
import torch

from services.renderer import cpu_kernels
from services.renderer.hashgrid import GridSpec, HashGrid, grid_encode_reference

P1, P2 = 2654435761, 805459861


def _u_to_x(u: torch.Tensor, bound: float = 1.0) -> torch.Tensor:
    return u * 2 * bound - bound


def test_er_nerf_layout_dense_then_hashed() -> None:
    # ER-NeRF tri-plane grid: 12 levels, base 64 -> 512, 2^14 rows: levels 0-3 dense.
    spec = GridSpec(input_dim=2, num_levels=12, level_dim=1, base_resolution=64, desired_resolution=512, log2_hashmap_size=14)
    assert spec.per_level_scale == pytest.approx(1.2081, abs=1e-4)
    assert spec.hashed == (False,) * 4 + (True,) * 8
    assert spec.resolutions[:5] == (64, 78, 94, 113, 137)
    assert spec.rows[0] == 65 * 65 + 7  # 4225 padded to a multiple of 8
    assert all(r % 8 == 0 for r in spec.rows)
    assert spec.rows[4:] == (2**14,) * 8
    assert spec.offsets[1] == spec.rows[0] and spec.table_rows == sum(spec.rows)
    lay = spec.layout()
    assert lay["kind"] == "torch-ngp" and lay["hashed_levels"] == list(range(4, 12))


def test_dense_level_is_exact_bilinear_of_hand_table() -> None:
    # one level, base 4: scale = 3, R = 4, dense stride R+1 = 5, rows 25 -> 32
    spec = GridSpec(input_dim=2, num_levels=1, level_dim=1, base_resolution=4, desired_resolution=4, log2_hashmap_size=10)
    assert spec.scales == (3.0,) and not spec.hashed[0] and spec.rows == (32,)
    table = torch.zeros(32, 1)
    for i in range(5):
        for j in range(5):
            table[i + 5 * j, 0] = float(7 * i - 3 * j + (i * j) % 4)  # arbitrary, not bilinear
    # u = (0.5, 0.5): pos = (2, 2) exactly -> the node value
    # u = (0.25, 0.75): pos = (1.25, 2.75): corners (1,2),(2,2),(1,3),(2,3), frac (.25,.75)
    u = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    t = table[:, 0]
    expected = torch.tensor(
        [
            t[2 + 10],
            0.75 * 0.25 * t[1 + 10] + 0.25 * 0.25 * t[2 + 10] + 0.75 * 0.75 * t[1 + 15] + 0.25 * 0.75 * t[2 + 15],
        ]
    )
    for backend in ("reference", "cpu"):
        g = HashGrid(spec, backend=backend)
        g.embeddings.data.copy_(table)
        out = g(_u_to_x(u))[:, 0]
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_dense_level_reproduces_linear_function_everywhere() -> None:
    spec = GridSpec(input_dim=2, num_levels=1, level_dim=1, base_resolution=4, desired_resolution=4, log2_hashmap_size=10)
    table = torch.zeros(32, 1)
    for i in range(5):
        for j in range(5):
            table[i + 5 * j, 0] = 2.0 * i + 3.0 * j
    g = HashGrid(spec, backend="reference")
    g.embeddings.data.copy_(table)
    u = torch.rand(500, 2, generator=torch.Generator().manual_seed(0))
    pos = u * 3.0 + 0.5
    torch.testing.assert_close(g(_u_to_x(u))[:, 0], 2 * pos[:, 0] + 3 * pos[:, 1], rtol=0, atol=1e-4)


def _hash_row(corner: tuple[int, ...], rows: int) -> int:
    primes = (1, P1, P2)
    h = 0
    for c, p in zip(corner, primes):
        h ^= (c * p) % 2**32
    return h % rows


@pytest.mark.parametrize("dim", [2, 3])
def test_hashed_level_uses_documented_hash(dim: int) -> None:
    # one level, base 64, 2^6 rows: (R+1)^D = 65^D > 64 -> hashed
    spec = GridSpec(input_dim=dim, num_levels=1, level_dim=1, base_resolution=64, desired_resolution=64, log2_hashmap_size=6)
    assert spec.hashed == (True,) and spec.rows == (64,) and spec.scales == (63.0,)
    table = torch.arange(64, dtype=torch.float32)[:, None]
    u = torch.tensor([[0.3, 0.71, 0.46][:dim], [0.05, 0.93, 0.62][:dim]])
    expected = []
    for point in u.tolist():
        pos = [p * 63.0 + 0.5 for p in point]
        base = [int(p // 1) for p in pos]
        frac = [p - b for p, b in zip(pos, base)]
        val = 0.0
        for bits in range(1 << dim):
            corner = tuple(b + ((bits >> d) & 1) for d, b in enumerate(base))
            w = 1.0
            for d in range(dim):
                w *= frac[d] if (bits >> d) & 1 else 1 - frac[d]
            val += w * _hash_row(corner, 64)
        expected.append(val)
    for backend in ("reference", "cpu"):
        g = HashGrid(spec, backend=backend)
        g.embeddings.data.copy_(table)
        torch.testing.assert_close(g(_u_to_x(u))[:, 0], torch.tensor(expected), rtol=1e-5, atol=1e-3)


def test_tiled_grid_wraps_dense_index() -> None:
    # tiled, base 16, 2^6 rows: dense index (i + 17 j) wrapped modulo 64, never hashed
    spec = GridSpec(input_dim=2, num_levels=1, level_dim=1, base_resolution=16, desired_resolution=16, log2_hashmap_size=6, gridtype="tiled")
    assert spec.hashed == (False,) and spec.strides == ((1, 17),)
    table = torch.arange(64, dtype=torch.float32)[:, None]
    u = torch.tensor([[(9 - 0.5) / 15, (11 - 0.5) / 15]])  # pos = (9, 11) -> node (9, 11)
    for backend in ("reference", "cpu"):
        g = HashGrid(spec, backend=backend)
        g.embeddings.data.copy_(table)
        assert g(_u_to_x(u))[0, 0].item() == pytest.approx((9 + 17 * 11) % 64, abs=1e-3)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_outside_inputs_give_zero_and_zero_gradient(backend: str) -> None:
    spec = GridSpec(input_dim=3, num_levels=4, level_dim=2, base_resolution=8, desired_resolution=32, log2_hashmap_size=10, bound=2.0)
    g = HashGrid(spec, backend=backend)
    g.embeddings.data.uniform_(-1, 1)
    x = torch.tensor([[2.01, 0.0, 0.0], [0.0, -2.5, 0.0], [0.1, 0.2, -0.3], [2.0, -2.0, 2.0]], requires_grad=True)
    out = g(x)
    assert out.shape == (4, 8)
    assert torch.all(out[:2] == 0) and out[2].abs().sum() > 0 and out[3].abs().sum() > 0  # bound itself is inside
    out.sum().backward()
    assert torch.all(x.grad[:2] == 0)


def test_gradients_match_finite_differences_float64() -> None:
    spec = GridSpec(input_dim=2, num_levels=3, level_dim=2, base_resolution=4, desired_resolution=16, log2_hashmap_size=5)
    assert any(spec.hashed) and not all(spec.hashed)
    gen = torch.Generator().manual_seed(1)
    table = torch.rand(spec.table_rows, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    u = torch.rand(64, 2, generator=gen, dtype=torch.float64) * 0.98 + 0.01
    # keep points away from cell edges so finite differences never cross one
    pos = u[:, None, :] * torch.tensor(spec.scales, dtype=torch.float64)[None, :, None] + 0.5
    safe = ((pos - pos.round()).abs() > 1e-3).all(dim=(1, 2))
    x = _u_to_x(u[safe]).requires_grad_(True)
    assert x.shape[0] > 40
    assert torch.autograd.gradcheck(lambda a, t: grid_encode_reference(a, t, spec), (x, table), eps=1e-6, atol=1e-6)


FAST_SPECS = [
    GridSpec(input_dim=2, num_levels=14, level_dim=1, base_resolution=64, desired_resolution=512, log2_hashmap_size=14),
    GridSpec(input_dim=3, num_levels=6, level_dim=2, base_resolution=8, desired_resolution=128, log2_hashmap_size=12, bound=1.5),
    GridSpec(input_dim=2, num_levels=5, level_dim=4, base_resolution=16, desired_resolution=2048, log2_hashmap_size=10, gridtype="tiled"),
]


def _compare(spec: GridSpec, fast_backend: str, device: str) -> HashGrid:
    gen = torch.Generator().manual_seed(3)
    ref = HashGrid(spec, backend="reference").to(device)
    fast = HashGrid(spec, backend=fast_backend).to(device)
    table = (torch.rand(spec.table_rows, spec.level_dim, generator=gen) * 2 - 1).to(device)
    ref.embeddings.data.copy_(table)
    fast.embeddings.data.copy_(table)
    x = ((torch.rand(3000, spec.input_dim, generator=gen) * 2.2 - 1.1) * spec.bound).to(device)
    go = torch.randn(3000, spec.output_dim, generator=gen).to(device)
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yf = ref(xr), fast(xf)
    torch.testing.assert_close(yf, yr, rtol=0, atol=1e-5)
    (yr * go).sum().backward()
    (yf * go).sum().backward()
    ge_r, ge_f = ref.embeddings.grad, fast.embeddings.grad
    torch.testing.assert_close(ge_f, ge_r, rtol=1e-5, atol=1e-5 * float(ge_r.abs().max()))
    torch.testing.assert_close(xf.grad, xr.grad, rtol=1e-5, atol=1e-5 * float(xr.grad.abs().max()))
    return fast


@pytest.mark.parametrize("spec", FAST_SPECS, ids=["triplane14", "3d-c2", "tiled-c4"])
def test_cpu_kernel_matches_reference(spec: GridSpec) -> None:
    if not cpu_kernels.available():
        pytest.skip("no C++ compiler here: the reference is used")
    assert HashGrid(spec).resolve_backend(torch.zeros(1, spec.input_dim)) == "cpu"
    _compare(spec, "cpu", "cpu")


def test_multi_grid_matches_separate_grids() -> None:
    if not cpu_kernels.available():
        pytest.skip("no C++ compiler here")
    spec = FAST_SPECS[0]
    gen = torch.Generator().manual_seed(4)
    tables = [torch.rand(spec.table_rows, 1, generator=gen, requires_grad=True) for _ in range(3)]
    planes = [(0, 1), (1, 2), (0, 2)]
    x = torch.rand(500, 3, generator=gen) * 2 - 1
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    fused = cpu_kernels.multi_grid_encode(xa, tables, spec, planes)
    sep = torch.cat([grid_encode_reference(xb[:, list(p)], t, spec) for t, p in zip(tables, planes)], dim=1)
    torch.testing.assert_close(fused, sep, rtol=0, atol=1e-6)
    go = torch.randn_like(fused)
    ga = torch.autograd.grad((fused * go).sum(), [xa, *tables])
    gb = torch.autograd.grad((sep * go).sum(), [xb, *tables])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


def test_fallback_when_kernels_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_kernels, "available", lambda: False)
    g = HashGrid(FAST_SPECS[1])
    assert g.resolve_backend(torch.zeros(1, 3)) == "reference"
    assert g(torch.zeros(5, 3)).shape == (5, 12)
    # float64 always takes the reference
    monkeypatch.undo()
    assert HashGrid(FAST_SPECS[1]).double().resolve_backend(torch.zeros(1, 3, dtype=torch.float64)) == "reference"


@pytest.mark.gpu
@pytest.mark.parametrize("spec", FAST_SPECS, ids=["triplane14", "3d-c2", "tiled-c4"])
def test_cuda_compiled_matches_reference(spec: GridSpec) -> None:
    fast = _compare(spec, "compile", "cuda")
    assert "compile" not in fast._broken  # the compiled kernel ran, not the fallback
