"""Multi-resolution hash grids with torch-ngp's indexing rules (REFERENCE.md §2).

`GridSpec` fixes the layout (level sizes, offsets, which levels are dense or hashed);
`grid_encode_reference` is the plain-PyTorch definition every fast path is tested
against; `HashGrid` owns the table and picks a backend:

- ``reference``: the plain-PyTorch code below (any device, any float dtype);
- ``cpu``: the C++/OpenMP kernel of `services.renderer.cpu_kernels` (float32, CPU);
- ``compile``: `torch.compile` of the reference (Triton on CUDA);
- ``auto``: ``cpu`` on CPU, ``compile`` on CUDA, each falling back to ``reference``
  when it cannot be built or does not cover the case.

Tables stay in the torch-ngp layout whatever the backend, so checkpoints are
interchangeable; `TcnnHashGrid` wraps tiny-cuda-nn, whose layout differs, and says so
in its own ``layout``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from services.renderer import cpu_kernels

log = logging.getLogger(__name__)

#: torch-ngp's hash primes (only the first D are used).
PRIMES = (1, 2654435761, 805459861)
_U32 = 0xFFFFFFFF

Backend = Literal["auto", "reference", "cpu", "compile"]


@dataclass(frozen=True)
class GridSpec:
    """Shape of one multi-resolution grid (torch-ngp `GridEncoder` arguments)."""

    input_dim: int = 3
    num_levels: int = 16
    level_dim: int = 2
    base_resolution: int = 16
    desired_resolution: int = 2048
    log2_hashmap_size: int = 19
    #: "hash": XOR-hash levels whose dense grid does not fit; "tiled": always dense
    #: indexing, wrapped modulo the table size (torch-ngp gridtype 1).
    gridtype: Literal["hash", "tiled"] = "hash"
    #: Inputs live in [-bound, bound] on every axis.
    bound: float = 1.0

    def __post_init__(self) -> None:
        if self.input_dim not in (2, 3):
            raise ValueError(f"input_dim must be 2 or 3, got {self.input_dim}")
        if self.num_levels < 1 or self.level_dim < 1:
            raise ValueError("num_levels and level_dim must be positive")
        if self.gridtype not in ("hash", "tiled"):
            raise ValueError(f"gridtype must be 'hash' or 'tiled', got {self.gridtype!r}")

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.level_dim

    @cached_property
    def per_level_scale(self) -> float:
        if self.num_levels == 1:
            return 1.0
        # float64, as torch-ngp computes it with numpy.
        return float(np.exp2(np.log2(self.desired_resolution / self.base_resolution) / (self.num_levels - 1)))

    @cached_property
    def resolutions(self) -> tuple[int, ...]:
        """res_l = ceil(base * s^l): only used to size the table rows."""
        return tuple(int(np.ceil(self.base_resolution * self.per_level_scale**level)) for level in range(self.num_levels))

    @cached_property
    def rows(self) -> tuple[int, ...]:
        """Rows per level: min(2^T, (res+1)^D) rounded up to a multiple of 8."""
        cap = 2**self.log2_hashmap_size
        out = []
        for res in self.resolutions:
            n = min(cap, (res + 1) ** self.input_dim)
            out.append(int(math.ceil(n / 8) * 8))
        return tuple(out)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Level-major row offsets into one table, length L+1."""
        acc = [0]
        for r in self.rows:
            acc.append(acc[-1] + r)
        return tuple(acc)

    @property
    def table_rows(self) -> int:
        return self.offsets[-1]

    @cached_property
    def scales(self) -> tuple[float, ...]:
        """scale_l = exp2(l * log2 s) * base - 1, each step rounded to float32 as the
        CUDA kernel does (the values are exact float32 numbers)."""
        s = np.float32(np.log2(self.per_level_scale))
        out = []
        for level in range(self.num_levels):
            e = np.exp2(np.float32(level) * s, dtype=np.float32)
            out.append(float(np.float32(e * np.float32(self.base_resolution)) - np.float32(1.0)))
        return tuple(out)

    @cached_property
    def strides(self) -> tuple[tuple[int, ...], ...]:
        """Per level and axis, the dense stride (R+1)^d, or 0 where torch-ngp's index
        loop stops before that axis (stride already past the table size)."""
        out = []
        for level, scale in enumerate(self.scales):
            r1 = int(math.ceil(scale)) + 1 + 1  # R + 1, with R = ceil(scale) + 1
            stride, row = 1, []
            for _ in range(self.input_dim):
                if stride <= self.rows[level]:
                    row.append(stride)
                    stride *= r1
                else:
                    row.append(0)
            out.append(tuple(row))
        return tuple(out)

    @cached_property
    def hashed(self) -> tuple[bool, ...]:
        """Whether level l uses the XOR hash: the full dense stride exceeds its rows."""
        out = []
        for level, scale in enumerate(self.scales):
            r1 = int(math.ceil(scale)) + 2
            out.append(self.gridtype == "hash" and r1**self.input_dim > self.rows[level])
        return tuple(out)

    def layout(self) -> dict[str, Any]:
        """JSON-ready description for manifests: enough to rebuild and to refuse a
        table written under different rules."""
        d = asdict(self)
        d.update(
            kind="torch-ngp",
            per_level_scale=self.per_level_scale,
            table_rows=self.table_rows,
            offsets=list(self.offsets),
            hashed_levels=[i for i, h in enumerate(self.hashed) if h],
            dense_stride="R+1",
            align_corners=False,
            interpolation="linear",
        )
        return d

    def level_tensors(self, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Per-level constants as tensors (what the reference and kernels consume)."""
        return {
            "scales": torch.tensor(self.scales, dtype=torch.float32, device=device),
            "rows": torch.tensor(self.rows, dtype=torch.int64, device=device),
            "offsets": torch.tensor(self.offsets[:-1], dtype=torch.int64, device=device),
            "strides": torch.tensor(self.strides, dtype=torch.int64, device=device),
            "hashed": torch.tensor(self.hashed, dtype=torch.bool, device=device),
        }


def grid_encode_reference(x: Tensor, table: Tensor, spec: GridSpec) -> Tensor:
    """Plain-PyTorch grid lookup: x [N, D] in [-bound, bound] -> [N, L*C], level-major.

    Vectorised over levels (dense and hashed levels as two groups); autograd supplies
    the input and table gradients. The arithmetic follows the torch-ngp kernel step by
    step in float32 (normalise, scale, +0.5, floor, corner weights multiplied axis by
    axis, corners summed in bit order) so that fast paths can match it to rounding.
    """
    n, dim = x.shape
    channels = table.shape[1]
    dev = x.device
    u = (x + spec.bound) / (2 * spec.bound)
    inside = ((u >= 0) & (u <= 1)).all(dim=-1)  # [N]
    # Park outside points at the origin so their (discarded) indices stay valid.
    u = torch.where(inside[:, None], u, torch.zeros_like(u))
    parts: list[tuple[list[int], Tensor]] = []
    for hashed in (False, True):
        levels = [lv for lv in range(spec.num_levels) if spec.hashed[lv] == hashed]
        if not levels:
            continue
        scales = torch.tensor([spec.scales[lv] for lv in levels], dtype=u.dtype, device=dev)
        rows = torch.tensor([spec.rows[lv] for lv in levels], dtype=torch.int64, device=dev)
        offsets = torch.tensor([spec.offsets[lv] for lv in levels], dtype=torch.int64, device=dev)
        pos = u[:, None, :] * scales[None, :, None] + 0.5  # [N, l, D]
        corner = torch.floor(pos).detach()
        frac = pos - corner
        corner = corner.to(torch.int64)
        # Per axis, the index term of the low (0) and high (1) corner.
        terms = []
        for d in range(dim):
            lo, hi = corner[..., d], corner[..., d] + 1
            if hashed:  # uint32 products: c * P_d mod 2^32
                terms.append((lo * PRIMES[d] & _U32, hi * PRIMES[d] & _U32))
            else:  # dense stride (R+1)^d, 0 where torch-ngp's loop stops before axis d
                st = torch.tensor([spec.strides[lv][d] for lv in levels], dtype=torch.int64, device=dev)
                terms.append((lo * st, hi * st))
        out = None
        for bits in range(1 << dim):
            w = None
            index = None
            for d in range(dim):
                hi = (bits >> d) & 1
                wd = frac[..., d] if hi else 1 - frac[..., d]
                w = wd if w is None else w * wd
                t = terms[d][hi]
                index = t if index is None else (index ^ t if hashed else index + t)
            if not hashed and spec.gridtype == "tiled":
                index = index & _U32  # uint32 wrap of the tiled index
            rows_idx = index % rows + offsets  # [N, l]
            feats = table[rows_idx.reshape(-1)].reshape(n, len(levels), channels)
            term = w[..., None].to(table.dtype) * feats
            out = term if out is None else out + term
        parts.append((levels, out))
    if len(parts) == 1:
        out = parts[0][1]
    else:
        (la, a), (lb, b) = parts
        out = torch.cat([a, b], dim=1)
        order = la + lb
        if order != sorted(order):
            out = out[:, torch.tensor([order.index(lv) for lv in range(spec.num_levels)], device=dev)]
    out = out * inside[:, None, None].to(out.dtype)
    return out.reshape(n, spec.num_levels * channels)


_compiled_reference: Any = None


def _compiled() -> Any:
    global _compiled_reference
    if _compiled_reference is None:
        _compiled_reference = torch.compile(grid_encode_reference, dynamic=True)
    return _compiled_reference


class HashGrid(nn.Module):
    """One multi-resolution grid in the torch-ngp layout, with a pluggable backend."""

    def __init__(self, spec: GridSpec, backend: Backend = "auto", init_std: float = 1e-4) -> None:
        super().__init__()
        self.spec = spec
        self.backend = backend
        self.embeddings = nn.Parameter(torch.empty(spec.table_rows, spec.level_dim))
        self._broken: set[str] = set()
        self.reset_parameters(init_std)

    def reset_parameters(self, std: float = 1e-4) -> None:
        with torch.no_grad():
            self.embeddings.uniform_(-std, std)

    @property
    def output_dim(self) -> int:
        return self.spec.output_dim

    @property
    def layout(self) -> dict[str, Any]:
        return self.spec.layout()

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"D={s.input_dim}, L={s.num_levels}, C={s.level_dim}, res={s.base_resolution}->"
            f"{s.desired_resolution}, T=2^{s.log2_hashmap_size}, {s.gridtype}, backend={self.backend}"
        )

    def resolve_backend(self, x: Tensor) -> str:
        """The backend a call with `x` will use (after fallbacks)."""
        want = self.backend
        if want == "auto":
            want = "cpu" if x.device.type == "cpu" else "compile"
        if want == "cpu":
            ok = (
                x.device.type == "cpu"
                and x.dtype == torch.float32
                and self.embeddings.dtype == torch.float32
                and cpu_kernels.supports_grid(self.spec.input_dim, self.spec.level_dim)
                and cpu_kernels.available()
            )
            return "cpu" if ok else "reference"
        if want == "compile" and "compile" in self._broken:
            return "reference"
        return want

    def forward(self, x: Tensor) -> Tensor:
        """x [..., D] in [-bound, bound] -> features [..., L*C] (0 outside)."""
        shape = x.shape[:-1]
        x2 = x.reshape(-1, self.spec.input_dim)
        backend = self.resolve_backend(x2)
        if backend == "cpu":
            out = cpu_kernels.grid_encode(x2, self.embeddings, self.spec)
        elif backend == "compile":
            try:
                out = _compiled()(x2, self.embeddings, self.spec)
            except Exception as exc:  # noqa: BLE001 - any compiler failure means: use the reference
                log.warning("torch.compile hash grid failed (%s); using the reference", exc)
                self._broken.add("compile")
                out = grid_encode_reference(x2, self.embeddings, self.spec)
        else:
            out = grid_encode_reference(x2, self.embeddings, self.spec)
        return out.reshape(*shape, self.spec.output_dim)


class TcnnHashGrid(nn.Module):
    """tiny-cuda-nn's HashGrid (CUDA only). Its dense stride is R, not R+1, so its
    tables are not interchangeable with `HashGrid`'s; `layout` records that."""

    def __init__(self, spec: GridSpec) -> None:
        super().__init__()
        import tinycudann as tcnn  # noqa: PLC0415 - optional dependency

        if spec.gridtype != "hash":
            raise ValueError("tiny-cuda-nn path supports gridtype='hash' only")
        self.spec = spec
        self.encoding = tcnn.Encoding(
            n_input_dims=spec.input_dim,
            encoding_config={
                "otype": "HashGrid",
                "n_levels": spec.num_levels,
                "n_features_per_level": spec.level_dim,
                "log2_hashmap_size": spec.log2_hashmap_size,
                "base_resolution": spec.base_resolution,
                "per_level_scale": spec.per_level_scale,
                "interpolation": "Linear",
            },
            dtype=torch.float32,
        )

    @property
    def output_dim(self) -> int:
        return self.spec.output_dim

    @property
    def layout(self) -> dict[str, Any]:
        d = asdict(self.spec)
        d.update(kind="tiny-cuda-nn", per_level_scale=self.spec.per_level_scale, dense_stride="R")
        return d

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[:-1]
        u = (x.reshape(-1, self.spec.input_dim) + self.spec.bound) / (2 * self.spec.bound)
        inside = ((u >= 0) & (u <= 1)).all(dim=-1, keepdim=True)
        out = self.encoding(u.clamp(0, 1)).float() * inside
        return out.reshape(*shape, self.spec.output_dim)


def tcnn_available() -> bool:
    try:
        import tinycudann  # noqa: F401, PLC0415
    except Exception:  # noqa: BLE001 - any import failure means: not available
        return False
    return torch.cuda.is_available()


def make_grid(spec: GridSpec, layout: Literal["torch-ngp", "tiny-cuda-nn", "auto"] = "torch-ngp", backend: Backend = "auto") -> nn.Module:
    """Build a grid of the requested table layout. ``layout="auto"`` takes tiny-cuda-nn
    when it is importable with CUDA (new models only: the layout is then recorded)."""
    if layout == "tiny-cuda-nn" or (layout == "auto" and tcnn_available() and spec.gridtype == "hash"):
        return TcnnHashGrid(spec)
    return HashGrid(spec, backend=backend)
