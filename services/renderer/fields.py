"""What every radiance field shares: the interface the volume renderer calls, the
no-bias MLP of ER-NeRF, a truncated exponential for densities, and the split of a
field's parameters into optimiser groups."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@runtime_checkable
class RadianceField(Protocol):
    """A 3D field the volume renderer can sample.

    `cond` is whatever per-frame conditioning the field needs (opaque to the renderer);
    `frame` [N] says which frame of `cond` each sample belongs to, so one call can mix
    samples of many frames. `forward` returns at least ``sigma`` [N] and ``rgb`` [N, 3];
    any other [N] or [N, k] entries are composited along the ray like colour.
    """

    def forward(self, x: Tensor, d: Tensor, cond: Any, frame: Tensor) -> dict[str, Tensor]: ...

    def density(self, x: Tensor, cond: Any, frame: Tensor) -> Tensor: ...


class MLP(nn.Sequential):
    """Linear layers without bias, ReLU between them (ER-NeRF's `MLP`)."""

    def __init__(self, dim_in: int, dim_out: int, dim_hidden: int, num_layers: int) -> None:
        layers: list[nn.Module] = []
        for i in range(num_layers):
            a = dim_in if i == 0 else dim_hidden
            b = dim_out if i == num_layers - 1 else dim_hidden
            layers.append(nn.Linear(a, b, bias=False))
            if i != num_layers - 1:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)

    def run_from(self, x: Tensor, start: int) -> Tensor:
        """Apply modules start, start+1, ... (e.g. 2 = after the first Linear + ReLU)."""
        for layer in list(self)[start:]:
            x = layer(x)
        return x


class _TruncExp(torch.autograd.Function):
    # exp forward; the gradient uses exp(min(x, 15)) so one huge density cannot turn
    # into inf * 0 = NaN gradients (torch-ngp's trunc_exp).
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15))


def trunc_exp(x: Tensor) -> Tensor:
    return _TruncExp.apply(x)


def grid_and_net(field: nn.Module, grid: nn.Module) -> dict[str, list[nn.Parameter]]:
    """A field's parameters as optimiser groups: "grid" (the hash tables of `grid`, which
    train at a higher learning rate) and "net" (everything else), in registration order."""
    grid_params = list(grid.parameters())
    in_grid = {id(p) for p in grid_params}
    return {"grid": grid_params, "net": [p for p in field.parameters() if id(p) not in in_grid]}
