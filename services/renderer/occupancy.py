"""The occupancy grid that lets ray marching skip empty space.

A 128^3 grid over the AABB stores a running density estimate per cell. Each update
evaluates the field at jittered cell centres for one (random) audio/eye condition and
keeps grid = max(decay * grid, new): over training this is the maximum occupancy over
audio conditions (RAD-NeRF), so a mouth that opens for some sound is never pruned.
Cells that no training camera sees hold -1 and are never occupied. A cell is occupied
when its density exceeds min(mean density, threshold).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.renderer.rays import DEFAULT_AABB, Intrinsics


class OccupancyGrid(nn.Module):
    def __init__(
        self,
        aabb: Sequence[float] = DEFAULT_AABB,
        resolution: int = 128,
        decay: float = 0.95,
        threshold: float = 10.0,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.decay = decay
        self.threshold = threshold
        self.register_buffer("aabb", torch.tensor(list(aabb), dtype=torch.float32))
        self.register_buffer("density", torch.zeros((resolution,) * 3))
        self.register_buffer("mask", torch.ones((resolution,) * 3, dtype=torch.bool))
        # until the first update every seen cell counts as occupied
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))

    @property
    def cell_size(self) -> Tensor:
        return (self.aabb[3:] - self.aabb[:3]) / self.resolution

    def cell_centers(self, jitter: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """World positions of all cells, [R^3, 3] in (x, y, z) index order; with
        `jitter`, each is moved uniformly within its cell."""
        r = self.resolution
        dev = self.aabb.device
        idx = torch.stack(torch.meshgrid(*(torch.arange(r, device=dev),) * 3, indexing="ij"), dim=-1).reshape(-1, 3)
        off = torch.rand(idx.shape, generator=generator, device=dev) if jitter else torch.full(idx.shape, 0.5, device=dev)
        return self.aabb[:3] + (idx + off) * self.cell_size

    def cell_index(self, x: Tensor) -> Tensor:
        """Flat cell index of world points (clamped to the grid), [N]."""
        r = self.resolution
        scale = torch.tensor([r, r, r], dtype=torch.float32, device=x.device) / (self.aabb[3:] - self.aabb[:3])
        ijk = torch.floor((x - self.aabb[:3]) * scale).long().clamp(0, r - 1)
        return (ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2]

    def occupied(self, x: Tensor) -> Tensor:
        """Boolean [N]: is the cell holding each point occupied."""
        return self.mask.reshape(-1)[self.cell_index(x)]

    @torch.no_grad()
    def mark_unseen(self, c2w: Tensor, intr: Intrinsics, cell_chunk: int = 1 << 16, camera_chunk: int = 64) -> int:
        """Set every cell whose centre no camera (c2w [N, 4, 4], renderer space) sees to
        -1 (never occupied). The frustum is widened by one cell on each side (as
        torch-ngp does) so cells straddling the image border are kept. Returns how many
        cells that leaves unseen."""
        centers = self.cell_centers()
        margin = float(self.cell_size.max())
        c2w = c2w.to(centers)
        seen = torch.zeros(centers.shape[0], dtype=torch.bool, device=centers.device)
        lo_x, hi_x = -intr.cx / intr.fx, (intr.width - intr.cx) / intr.fx
        lo_y, hi_y = -intr.cy / intr.fy, (intr.height - intr.cy) / intr.fy
        for s in range(0, centers.shape[0], cell_chunk):
            p = centers[s : s + cell_chunk]
            for k in range(0, c2w.shape[0], camera_chunk):
                pose = c2w[k : k + camera_chunk]
                # camera-space points: R^T (p - t)
                cam = (p[None] - pose[:, None, :3, 3]) @ pose[:, :3, :3]  # [n, P, 3]
                x, y, z = cam.unbind(-1)
                vis = (
                    (z > 0)
                    & (x > lo_x * z - margin)
                    & (x < hi_x * z + margin)
                    & (y > lo_y * z - margin)
                    & (y < hi_y * z + margin)
                )
                seen[s : s + cell_chunk] |= vis.any(dim=0)
        flat = self.density.view(-1)
        flat[~seen] = -1.0
        self._refresh()
        return int((~seen).sum())

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[Tensor], Tensor],
        decay: float | None = None,
        max_cells: int | None = None,
        dilate: bool = True,
        chunk: int = 1 << 16,
        generator: torch.Generator | None = None,
    ) -> None:
        """One update: density at jittered centres (all cells, or `max_cells` random
        ones) -> grid = max(decay * grid, new) on cells seen by a camera.

        `density_fn` maps world points [N, 3] to sigma [N] for one condition; call
        `update` with a different random audio/eye condition each time.
        """
        decay = self.decay if decay is None else decay
        dev = self.aabb.device
        n = self.resolution**3
        centers = self.cell_centers(jitter=True, generator=generator)
        if max_cells is not None and max_cells < n:
            cells = torch.randperm(n, generator=generator, device=dev)[:max_cells]
        else:
            cells = torch.arange(n, device=dev)
        new = torch.full((n,), -1.0, device=dev)
        for s in range(0, cells.shape[0], chunk):
            c = cells[s : s + chunk]
            new[c] = density_fn(centers[c]).reshape(-1).float().clamp(min=0)
        if dilate:  # a cell is as dense as its densest neighbour: less aggressive culling
            grid = new.view((1, 1) + (self.resolution,) * 3)
            new = F.max_pool3d(grid, kernel_size=3, stride=1, padding=1).view(-1).where(new >= 0, new)
        flat = self.density.view(-1)
        valid = (flat >= 0) & (new >= 0)
        flat[valid] = torch.maximum(flat[valid] * decay, new[valid])
        self.updates += 1
        self._refresh()

    def set_density(self, density: Tensor) -> None:
        """Replace the estimate (e.g. restored from a checkpoint or an analytic shape)."""
        with torch.no_grad():
            self.density.copy_(density.reshape(self.density.shape))
            self.updates.fill_(max(1, int(self.updates)))
            self._refresh()

    @property
    def mean_density(self) -> float:
        return float(self.density.clamp(min=0).mean())

    def _refresh(self) -> None:
        if int(self.updates) == 0:
            self.mask.copy_(self.density >= 0)
        else:
            thresh = min(self.mean_density, self.threshold)
            self.mask.copy_(self.density > thresh)

    def occupied_fraction(self) -> float:
        return float(self.mask.float().mean())
