"""The fast render path of a trained subject: frames of the same NeRF from fewer rays and samples.

Every pixel is either volume-rendered through the subject's head and torso or interpolated
from neighbours that were, so the NeRF stays the only source of the image. The levers:

- **Coarse to fine.** Rays are cast on a lattice every `stride` pixels. A lattice cell whose
  corners differ (premultiplied colour or opacity, by more than `tau`) is subdivided and its
  midpoints cast, down to single pixels; cells that stay smooth are filled by bilinear
  interpolation of the foreground, composited over the exact background. Silhouettes, eyes,
  lips and nostrils get every ray; skin, background and the inside of the torso do not.
- **Fitted occupancy.** Samples are taken only in occupancy cells whose fitted density is
  `occupancy_scale` times the training threshold: the translucent shell the training grid
  keeps around the head carries almost no weight. Given a pose to check on, that grid (or
  one half as sparse) is kept only if a small frame rendered with it matches the training
  grid's within `check_psnr` dB; else the training grid is used.
- **Longer steps.** Samples are `step_scale` times further apart along a ray than in the
  full render; the frames stay within the goal's distance of the full render (demo:
  ≥ 43.6 dB at 1.25×, 45.9 dB at 1×, for 0.86× the CPU; `eval` PSNR against the truth
  0.12 dB lower; 1.5×: 0.76×, 42.6 dB, 0.2 dB).
- **Cheaper samples.** The head computes no attention maps (`HeadCond.lean`), its MLPs run
  in bfloat16 where the CPU has native bfloat16 dot products (in blocks of a few fixed sizes:
  oneDNN keeps one cached primitive of a few MB per GEMM shape), and the torso is evaluated
  only where the head lets it show.
- **Frames in parallel.** A batch's frames are split into one part per intra-op thread of
  the caller, each rendered on a thread of its own with one intra-op thread: the parts do
  not wait on each other, as OpenMP threads inside each of the many small ops do.
- **Cached poses.** A pose rendered before (a still pose, a replayed track) starts from its
  cached frame: the audio code changes only the mouth and jaw, the blink only the eyes, so
  the head's lattice is cast with the new code, and only the cells whose rays changed (and
  one cell around them) are re-rendered, coarse to fine, and blended into the cached frame
  with a feathered mask. The cache is an LRU bounded in bytes; the frames of a bundle's baked
  poses (services.renderer.pose_bake) fill it for the default walk.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from services.renderer.fields import RadianceField
from services.renderer.head_field import HeadCond
from services.renderer.occupancy import OccupancyGrid
from services.renderer.rays import Intrinsics
from services.renderer.renderer import TalkingHeadModel, rays_at, render_pixels
from services.renderer.volume import RenderConfig, render_rays


@dataclass(frozen=True)
class FastPathConfig:
    stride: int = 4  # coarse lattice spacing in pixels (a power of two)
    tau: float = 0.16  # subdivide a cell whose corners differ by more than this (colour or opacity)
    dilate_levels: int = 1  # on the first this many levels, subdivide the neighbours of such a cell too
    occupancy_scale: float = 2.0  # sample only cells denser than this × the training threshold
    check_psnr: float = 45.0  # ... if a check frame rendered so is within this of the training grid's
    torso_cutoff: float = 0.999  # no torso behind head pixels at least this opaque
    step_scale: float = 1.25  # ray step length × the full render's
    change_tau: float = 6.0 / 255  # cached pose: a lattice ray counts as changed above this
    head_margin: int = 2  # cached pose: lattice cells around the head that a new code may reach
    cache_bytes: int = 64 << 20  # bound of the pose cache
    field_block: int = 8192  # head samples per field call (a last, smaller one is padded to 1/8ths)
    autocast: str | None = "auto"  # "auto": bfloat16 where the CPU has it natively

    def __post_init__(self) -> None:
        if self.stride < 1 or self.stride & (self.stride - 1):
            raise ValueError(f"stride must be a power of two, got {self.stride}")
        if not self.step_scale > 0:
            raise ValueError(f"step_scale must be > 0, got {self.step_scale}")
        if self.autocast not in (None, "auto", "bfloat16", "float16"):
            raise ValueError(f"autocast must be None, 'auto', 'bfloat16' or 'float16', got {self.autocast!r}")


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot products (AVX512-BF16 or AMX): there bfloat16
    MLPs are faster than float32, elsewhere slower."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def supports_fast_path(model: TalkingHeadModel) -> bool:
    """A subject whose occupancy grid was fitted in training (an untrained one has none)."""
    return int(model.occupancy.updates) > 0


def fitted_occupancy(occ: OccupancyGrid, scale: float) -> OccupancyGrid:
    """A copy of a trained occupancy grid keeping only cells `scale` times denser than its
    own threshold (the grid itself is not changed)."""
    out = OccupancyGrid(occ.aabb.tolist(), occ.resolution, occ.decay, occ.threshold).to(occ.aabb.device)
    out.load_state_dict(occ.state_dict())
    if int(occ.updates) > 0:
        out.mask.copy_(occ.density > scale * min(occ.mean_density, occ.threshold))
    return out


# ---- the lattice ---------------------------------------------------------------------------------
# Level 0 has knots every `stride` pixels from 0 to stride * cells (which may lie just past the
# image: those rays are cast like any other); each level halves the spacing, so a level's knots
# are the previous level's knots and the midpoints between them, and the last level is every
# pixel. Values on a level are [F, C, ny, nx]; a level's cells are [F, ny-1, nx-1].

def _cell_range(g: Tensor) -> Tensor:
    """max - min over the four corners of every cell, per channel: [F, C, ny-1, nx-1]."""
    a, b, c, d = g[..., :-1, :-1], g[..., :-1, 1:], g[..., 1:, :-1], g[..., 1:, 1:]
    return torch.maximum(torch.maximum(a, b), torch.maximum(c, d)) - torch.minimum(torch.minimum(a, b), torch.minimum(c, d))


def _corner_max(v: Tensor) -> Tensor:
    """max over the four corners of every cell of [F, ny, nx] → [F, ny-1, nx-1]."""
    a, b, c, d = v[:, :-1, :-1], v[:, :-1, 1:], v[:, 1:, :-1], v[:, 1:, 1:]
    return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))


def _dilate(cells: Tensor, r: int = 1) -> Tensor:
    return F.max_pool2d(cells[:, None].float(), 2 * r + 1, 1, r)[:, 0] > 0


def _finer_knots(cells: Tensor) -> Tensor:
    """The next level's knots that lie in (or on the edge of) a marked cell: cells
    [F, ny-1, nx-1] → knots [F, 2ny-1, 2nx-1]."""
    f, cy, cx = cells.shape
    centres = torch.zeros(f, 2 * cy + 1, 2 * cx + 1, dtype=torch.bool, device=cells.device)
    centres[:, 1::2, 1::2] = cells  # a cell's centre is a knot of the next level
    return _dilate(centres)


def _corner_knots(cells: Tensor) -> Tensor:
    """Knots [F, ny, nx] at a corner of a marked cell [F, ny-1, nx-1]."""
    return F.max_pool2d(cells[:, None].float(), 2, 1, 1)[:, 0] > 0


def _cell_pixels(cells: Tensor, stride: int, height: int, width: int) -> Tensor:
    """Pixels [F, H, W] of the marked level-0 cells, edges included."""
    px = cells.repeat_interleave(stride, 1).repeat_interleave(stride, 2)
    px = F.max_pool2d(px[:, None].float(), 2, 1, 1)[:, 0] > 0  # the far edge belongs to the cell too
    return px[:, :height, :width]


def _upsample(g: Tensor) -> Tensor:
    return F.interpolate(g, size=(2 * g.shape[-2] - 1, 2 * g.shape[-1] - 1), mode="bilinear", align_corners=True)


class BlockedField:
    """A radiance field evaluated `block` samples at a time, the last call padded to a
    multiple of block/8 (at most 1024): its GEMMs see few row counts (nine by default)."""

    def __init__(self, field: RadianceField, block: int) -> None:
        self.field, self.block, self.step = field, block, max(1, min(block // 8, 1024))

    def _blocks(self, fn: Callable[..., Any], x: Tensor, *rest: Any) -> list[tuple[Any, int]]:
        *per_sample, cond, frame = rest
        out = []
        for s in range(0, x.shape[0], self.block):
            part = [t[s : s + self.block] for t in (x, *per_sample, frame)]
            n = part[0].shape[0]
            size = -(-n // self.step) * self.step
            if size != n:
                part = [torch.cat([t, t[:1].expand(size - n, *t.shape[1:])]) for t in part]
            out.append((fn(*part[:-1], cond, part[-1]), n))
        return out

    def __call__(self, x: Tensor, d: Tensor, cond: Any, frame: Tensor) -> dict[str, Tensor]:
        if x.shape[0] == 0:
            return self.field(x, d, cond, frame)
        parts = self._blocks(self.field, x, d, cond, frame)
        return {k: torch.cat([p[k][:n] for p, n in parts]) for k in parts[0][0]}

    forward = __call__

    def density(self, x: Tensor, cond: Any, frame: Tensor) -> Tensor:
        if x.shape[0] == 0:
            return self.field.density(x, cond, frame)
        return torch.cat([p[:n] for p, n in self._blocks(self.field.density, x, cond, frame)])


# ---- the pose cache ------------------------------------------------------------------------------

@dataclass
class CachedFrame:
    image: Tensor  # uint8 [H, W, 3], the frame as first rendered
    reach: Tensor  # bool [ny-1, nx-1]: level-0 cells the head (and what a code moves) may cover

    @property
    def nbytes(self) -> int:
        return self.image.numel() + self.reach.numel()


class PoseCache:
    """Frames by exact pose, least recently used first out, at most `max_bytes` held. A pose
    it does not hold is asked of `baked` (the bundle's baked frames, services.renderer.pose_bake)
    when set: found there, it is held from then on and counts as a hit."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = self.misses = 0
        self.baked: Callable[[bytes], CachedFrame | None] | None = None
        self._items: OrderedDict[bytes, CachedFrame] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: bytes) -> CachedFrame | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self.hits += 1
                self._items.move_to_end(key)
                return item
        baked = self.baked
        item = baked(key) if baked is not None else None
        with self._lock:
            if item is None:
                self.misses += 1
                return None
            self.hits += 1
        self.put(key, item)
        return item

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0

    def items(self) -> list[tuple[bytes, CachedFrame]]:
        """Every held (key, frame), least recently used first."""
        with self._lock:
            return list(self._items.items())

    def put(self, key: bytes, item: CachedFrame) -> None:
        if item.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self._items[key] = item
            self.nbytes += item.nbytes
            while self.nbytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.nbytes -= dropped.nbytes


# ---- frames --------------------------------------------------------------------------------------

class FastRenderer:
    """Frames of one subject's model through the fast path (see the module docstring)."""

    def __init__(self, model: TalkingHeadModel, intr: Intrinsics, background: Tensor,
                 config: FastPathConfig = FastPathConfig(), check_pose: Tensor | None = None) -> None:
        self.model, self.intr, self.config = model, intr, config
        self.background = background  # [H, W, 3] float in [0, 1]
        self.occupancy = (fitted_occupancy(model.occupancy, config.occupancy_scale) if check_pose is None
                          else self._fit_occupancy(check_pose))
        dtype = config.autocast
        if dtype == "auto":
            dtype = "bfloat16" if background.device.type == "cpu" and native_bf16() else None
        self.render_config: RenderConfig = replace(model.render_config, autocast_dtype=dtype,
                                                   dt=model.render_config.dt * config.step_scale)
        self.head = BlockedField(model.head, config.field_block)
        self.cache = PoseCache(config.cache_bytes)
        s = config.stride
        self.cells = (math.ceil((intr.height - 1) / s), math.ceil((intr.width - 1) / s))  # level-0 cells
        self.levels = int(math.log2(s)) + 1
        self.rays = 0  # rays cast so far (the full render casts H * W per frame)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @torch.no_grad()
    def _fit_occupancy(self, pose: Tensor, size: int = 48) -> OccupancyGrid:
        """The sparsest fitted grid (`occupancy_scale`, then half of it) that renders the pose
        (4x4, renderer space) within `check_psnr` dB of the training grid, on a small frame
        with a neutral and a random code; else the training grid."""
        model = self.model
        intr = self.intr.resized(size, size)
        c2w = pose.reshape(1, 4, 4).expand(2, 4, 4).to(self.background)
        audio = torch.zeros(2, model.head.config.audio_dim, device=c2w.device)
        audio[1] = torch.randn(audio.shape[1], generator=torch.Generator().manual_seed(0)).to(audio) * 0.3
        cond = HeadCond(audio, torch.zeros(2, device=c2w.device), lean=True)
        flat = torch.arange(2 * size * size, device=c2w.device)

        def image(occ: OccupancyGrid) -> Tensor:
            return render_pixels(model.head, c2w, intr, flat, cond, occ, None, model.torso, None,
                                 model.render_config)["image"].clamp(0, 1)

        reference = image(model.occupancy)
        for scale in (self.config.occupancy_scale, self.config.occupancy_scale / 2):
            occ = fitted_occupancy(model.occupancy, scale)
            mse = float(((image(occ) - reference) ** 2).mean())
            if scale <= 1 or mse == 0 or -10 * math.log10(mse) >= self.config.check_psnr:
                return occ
        return model.occupancy

    def _shade(self, c2w: Tensor, cond: HeadCond, frame: Tensor, row: Tensor, col: Tensor,
               torso: Tensor | None = None) -> Tensor:
        """Pixels (row, col) of frames `frame` → [n, 6]: the foreground (premultiplied colour
        of head over torso, its opacity), the head's own opacity and the torso's (1 where it
        was not evaluated). The torso is evaluated where `torso` [n] is True (default:
        everywhere) and the head lets it show."""
        model = self.model
        if not cond.lean:
            cond = HeadCond(cond.audio, cond.eye, cond.latent, lean=True)
        rays_o, rays_d, xy = rays_at(c2w, self.intr, frame, row, col)
        head = render_rays(self.head, rays_o, rays_d, cond, frame, self.occupancy, self.render_config)
        alpha = head["alpha"]
        out = torch.cat([head["rgb"], alpha[:, None], alpha[:, None], torch.ones_like(alpha)[:, None]], dim=1)
        if model.torso is None:
            out[:, 5] = 0
        else:
            shows = alpha < self.config.torso_cutoff
            seen = (shows if torso is None else shows & torso).nonzero(as_tuple=True)[0]
            if len(seen):
                tor = model.torso(xy[seen], c2w, frame[seen])
                behind = (1 - alpha[seen, None]) * tor["alpha"][:, None]
                out[seen, :4] += torch.cat([behind * tor["rgb"], behind], dim=1)
                out[seen, 5] = tor["alpha"]
        self.rays += len(row)
        return out

    def _cast(self, c2w: Tensor, cond: HeadCond, frames: Tensor, g: Tensor, level: int, knots: Tensor,
              torso: Tensor | None = None, origin: tuple[int, int] = (0, 0)) -> None:
        """Shade the knots of `level` marked in knots [f, ny, nx] into g [f, 6, ny, nx]; knot
        (0, 0) is pixel `origin`."""
        f, i, j = knots.nonzero(as_tuple=True)
        step = self.config.stride >> level
        g[f, :, i, j] = self._shade(c2w, cond, frames[f], i * step + origin[0], j * step + origin[1],
                                    None if torso is None else torso[f, i, j])

    def _refine(self, c2w: Tensor, cond: HeadCond, frames: Tensor, g: Tensor, may_refine: Tensor,
                origin: tuple[int, int] = (0, 0), size: tuple[int, int] | None = None) -> Tensor:
        """Coarse to fine from level-0 values g [f, 6, ny, nx] (see `_shade`; knot (0, 0) at
        pixel `origin`): cells in may_refine [f, ny-1, nx-1] whose corners differ by more than
        `tau` are subdivided, the others interpolated. Returns [f, h, w, 6] (`size`, default
        the frame's)."""
        for level in range(self.levels - 1):
            spread = _cell_range(g)
            refine = spread[:, :4].amax(1) > self.config.tau
            if level < self.config.dilate_levels:  # a feature smaller than a cell may sit between corners
                refine = _dilate(refine)
            refine &= may_refine
            inside = _finer_knots(refine)
            new = inside.clone()
            new[:, ::2, ::2] = False  # this level's knots are cast already
            # the torso only in cells where it is at a corner (or may be, behind the head)
            torso = _finer_knots(refine & (_corner_max(g[:, 5]) > 1e-3))
            g = _upsample(g)
            if bool(new.any()):
                self._cast(c2w, cond, frames, g, level + 1, new, torso, origin)
            may_refine = _corner_max((~inside).float()) == 0  # cells whose corners are all cast
        h, w = size or (self.intr.height, self.intr.width)
        return g[:, :, :h, :w].permute(0, 2, 3, 1)

    def _cold(self, c2w: Tensor, cond: HeadCond, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Coarse-to-fine frames [f, H, W, 3] in [0, 1], and the level-0 cells their head may reach."""
        every = torch.ones(len(frames), self.cells[0] + 1, self.cells[1] + 1, dtype=torch.bool, device=c2w.device)
        g = torch.zeros(len(frames), 6, *every.shape[1:], device=c2w.device)
        self._cast(c2w, cond, frames, g, 0, every)
        reach = _dilate(_corner_max(g[:, 4]) > 1e-3, self.config.head_margin)
        fg = self._refine(c2w, cond, frames, g, every[:, 1:, 1:])
        return self._over_background(fg).clamp(0, 1), reach

    def _warm(self, c2w: Tensor, cond: HeadCond, frames: Tensor, bases: list[CachedFrame]) -> Tensor:
        """Cached poses with new codes and blinks: each cached frame with the cells whose rays
        changed re-rendered (coarse to fine) and blended in with a feathered mask."""
        h, w, s = self.intr.height, self.intr.width, self.config.stride
        images = torch.stack([b.image for b in bases]).to(c2w.device).float().div(255)
        reach = torch.stack([b.reach for b in bases]).to(c2w.device)
        knots = _corner_knots(reach)
        g = torch.zeros(len(frames), 6, *knots.shape[1:], device=c2w.device)
        self._cast(c2w, cond, frames, g, 0, knots)
        knots[:, :, (torch.arange(knots.shape[2], device=c2w.device) * s) >= w] = False  # past the image:
        knots[:, (torch.arange(knots.shape[1], device=c2w.device) * s) >= h] = False  # nothing to compare
        f, i, j = knots.nonzero(as_tuple=True)
        y, x = i * s, j * s
        now = self._over_background(g[f, :, i, j], self.background[y, x])
        changed = torch.zeros_like(knots)
        changed[f, i, j] = (now - images[f, y, x]).abs().amax(-1) > self.config.change_tau
        core = (_corner_max(changed.float()) > 0) & reach
        if not bool(core.any()):
            return images
        around = _dilate(core) & reach
        # The refine, the feather and the blend run only in the box of `around` and one cell
        # more on each side (as far as the feather looks), with the same result: the rest of
        # the frame is the cached one. On the demo the box is 17-42 % of the frame, and these
        # ops over the whole frame were a fifth of a cached frame's CPU.
        rows = around.any(2).any(0).nonzero()[:, 0]
        cols = around.any(1).any(0).nonzero()[:, 0]
        r0, r1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, around.shape[1])  # cells [r0, r1)
        c0, c1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, around.shape[2])
        y0, x0 = r0 * s, c0 * s
        hh, ww = min(h, r1 * s + 1) - y0, min(w, c1 * s + 1) - x0
        core, around = core[:, r0:r1, c0:c1], around[:, r0:r1, c0:c1]
        # full weight on the changed cells, ramping down to the cached frame over one more cell
        k = 2 * s + 1
        weight = _cell_pixels(core, s, hh, ww)[:, None].float()
        weight = F.avg_pool2d(weight, (1, k), 1, (0, s), count_include_pad=False)
        weight = F.avg_pool2d(weight, (k, 1), 1, (s, 0), count_include_pad=False)[:, 0]
        weight = (2 * weight).clamp(max=1) * _cell_pixels(around, s, hh, ww)
        fg = self._refine(c2w, cond, frames, g[:, :, r0:r1 + 1, c0:c1 + 1], around, (y0, x0), (hh, ww))
        now = self._over_background(fg, self.background[y0:y0 + hh, x0:x0 + ww]).clamp(0, 1)
        box = images[:, y0:y0 + hh, x0:x0 + ww]
        box.copy_(torch.lerp(box, now, weight[..., None]))
        return images

    def _over_background(self, fg: Tensor, background: Tensor | None = None) -> Tensor:
        return fg[..., :3] + (1 - fg[..., 3:4]) * (self.background if background is None else background)

    def _split(self, fn: Callable[..., Any], frames: list[int], *args: Any) -> list[tuple[list[int], Any]]:
        """(part, fn(part, *args)) for the frames in as many parts as the caller has intra-op
        threads, each part on one thread of its own: the lattice's many small ops scale
        better across frames than inside each op."""
        if not frames:
            return []
        parts = min(len(frames), torch.get_num_threads()) if self.background.device.type == "cpu" else 1
        if parts <= 1:
            return [(frames, fn(frames, *args))]
        with self._pool_lock:
            if self._pool is None or self._pool._max_workers < parts:
                self._pool = ThreadPoolExecutor(parts, "fast-render", initializer=torch.set_num_threads, initargs=(1,))
        step = -(-len(frames) // parts)
        groups = [frames[s : s + step] for s in range(0, len(frames), step)]
        futures = [self._pool.submit(torch.no_grad()(fn), g, *args) for g in groups]
        return [(g, f.result()) for g, f in zip(groups, futures)]

    @torch.no_grad()
    def render(self, c2w: Tensor, cond: HeadCond, keys: list[bytes] | None = None) -> Tensor:
        """Frames [F, H, W, 3] in [0, 1] for poses c2w [F, 4, 4] (renderer space) and the
        conditions of F frames. `keys` (one per frame, equal for equal poses) turn on the
        pose cache."""
        n, dev = c2w.shape[0], c2w.device
        out = torch.empty(n, self.intr.height, self.intr.width, 3, device=dev)

        def cold(frames: list[int]) -> tuple[Tensor, Tensor]:
            return self._cold(c2w, cond, torch.tensor(frames, device=dev))

        def warm(frames: list[int]) -> Tensor:
            return self._warm(c2w, cond, torch.tensor(frames, device=dev), [bases[keys[i]] for i in frames])  # type: ignore[index,misc]

        bases: dict[bytes, CachedFrame | None] = {}
        first = list(range(n))  # the first frame of each pose the cache does not hold
        if keys is not None:
            first = []
            for i, key in enumerate(keys):
                if key not in bases:
                    bases[key] = self.cache.get(key)
                    if bases[key] is None:
                        first.append(i)
        for frames, (images, reach) in self._split(cold, first):
            out[frames] = images
            for j, i in enumerate(frames if keys is not None else ()):
                bases[keys[i]] = item = CachedFrame((images[j] * 255).round().to(torch.uint8), reach[j])  # type: ignore[index]
                self.cache.put(keys[i], item)  # type: ignore[index]
        rest = [i for i in range(n) if i not in set(first)]
        for frames, images in self._split(warm, rest):
            out[frames] = images
        return out
