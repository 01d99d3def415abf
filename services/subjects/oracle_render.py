"""Exact ray casting of the oracle scene: colour, parsing labels, torso layer, landmarks.

Pure numpy, no I/O. One call renders one frame for one FaceState through a pinhole
camera (OpenGL convention: camera looks down −z, y up; pixel centres at +0.5 as in
torch-ngp's get_rays). Pixels on part boundaries are re-traced with a 2×2 grid of
sub-pixel rays so silhouettes are anti-aliased; parsing labels stay hard.
Arrays of points, normals and colours are component-major ([3, N]) for speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.subjects import oracle_scene as sc
from services.subjects import raycast as rc
from services.subjects.oracle_scene import PART, FaceState, MouthShape, smoothstep

INF = np.float32(np.inf)
_JAW_PARTS = (PART["jaw"], PART["chin"], PART["muzzle_lo"], PART["tongue"], PART["teeth_lo"])
_SUBPIXELS = ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))


def _col(rgb) -> np.ndarray:
    return np.asarray(rgb, np.float32)[:, None]


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels and the fixed body-frame camera-to-world (scene units)."""

    size: int
    focal: float
    cx: float
    cy: float
    c2w_body: np.ndarray

    @staticmethod
    def default(size: int) -> Camera:
        c2w = np.eye(4, dtype=np.float32)
        c2w[:3, 3] = (0.0, -0.2, 4.0)
        return Camera(size, 2.45 * size, size / 2.0, size / 2.0, c2w)

    def pixel_dirs(self, offsets: tuple[float, float] = (0.5, 0.5), pixels: np.ndarray | None = None) -> np.ndarray:
        """Unit camera-frame directions [3,N] for all pixels (row-major) or flat pixel indices."""
        if pixels is None:
            pixels = np.arange(self.size * self.size)
        u = (pixels % self.size).astype(np.float32) + offsets[0]
        v = (pixels // self.size).astype(np.float32) + offsets[1]
        d = np.stack([(u - self.cx) / self.focal, -(v - self.cy) / self.focal, -np.ones_like(u)])
        return d / np.sqrt((d * d).sum(0))

    def project(self, points: np.ndarray, c2w: np.ndarray) -> np.ndarray:
        """Points [N,3] in the frame of c2w → pixel coordinates [N,2] (x right, y down,
        pixel i centred at i, the convention of landmark detectors and .lms files)."""
        w2c = np.linalg.inv(c2w)
        pc = points @ w2c[:3, :3].T + w2c[:3, 3]
        u = self.cx + self.focal * pc[:, 0] / -pc[:, 2] - 0.5
        v = self.cy - self.focal * pc[:, 1] / -pc[:, 2] - 0.5
        return np.stack([u, v], 1).astype(np.float32)


@dataclass
class Trace:
    """Per-ray result of one tracing pass."""

    rgb: np.ndarray  # [3,N] float32 in [0,1], background where part < 0
    part: np.ndarray  # [N] int16, −1 = background
    body_rgb: np.ndarray  # [3,N] the neck/torso layer alone (what lies behind the head)
    body_hit: np.ndarray  # [N] bool


class HeadGeometry:
    """The head's parts for one FaceState: ellipsoid specs plus the carving rules."""

    def __init__(self, state: FaceState) -> None:
        self.state = state
        m = MouthShape.of(state.open, state.round)
        self.mouth = m
        jaw = np.array([0.0, -m.drop, -0.25 * m.drop], np.float32)
        self.jaw_offset = jaw
        fwd = np.array([0.0, 0.0, m.protrude], np.float32)
        squeeze = 1.0 - 0.15 * float(np.clip(state.round, 0, 1))
        mirror = np.array([-1, 1, 1], np.float32)
        ear_rot = rc.rotation_xyz(0.0, 0.35, 0.0)
        brow_rot = rc.rotation_xyz(0.0, 0.0, -0.12)

        def E(c, a, off=None, rot=None):
            c = np.asarray(c, np.float32) + (off if off is not None else 0)
            return (c, np.asarray(a, np.float32), rot)

        self.ell: dict[int, tuple] = {
            PART["skull"]: E(*sc.SKULL),
            PART["hair"]: E(*sc.HAIR),
            PART["jaw"]: E(*sc.JAW, jaw),
            PART["chin"]: E(*sc.CHIN, jaw),
            PART["cheek_r"]: E(np.array(sc.CHEEK[0]) * mirror, sc.CHEEK[1]),
            PART["cheek_l"]: E(*sc.CHEEK),
            PART["muzzle_up"]: E(sc.MUZZLE_UP[0], np.array(sc.MUZZLE_UP[1]) * (squeeze, 1, 1), fwd),
            PART["muzzle_lo"]: E(sc.MUZZLE_LO[0], np.array(sc.MUZZLE_LO[1]) * (squeeze, 1, 1), jaw + fwd),
            PART["nose_ridge"]: E(*sc.NOSE_RIDGE, rot=rc.rotation_xyz(-0.3, 0.0, 0.0)),
            PART["nose_tip"]: E(*sc.NOSE_TIP),
            PART["ala_r"]: E(np.array(sc.ALA[0]) * mirror, sc.ALA[1]),
            PART["ala_l"]: E(*sc.ALA),
            PART["ear_r"]: E(np.array(sc.EAR[0]) * mirror, sc.EAR[1], rot=ear_rot.T),
            PART["ear_l"]: E(*sc.EAR, rot=ear_rot),
            PART["lid_r"]: E(sc.EYE_C * mirror, (sc.LID_R,) * 3),
            PART["lid_l"]: E(sc.EYE_C, (sc.LID_R,) * 3),
            PART["brow_r"]: E(np.array(sc.BROW[0]) * mirror, sc.BROW[1], rot=brow_rot.T),
            PART["brow_l"]: E(*sc.BROW, rot=brow_rot),
            PART["eye_r"]: E(sc.EYE_C * mirror, (sc.EYE_R,) * 3),
            PART["eye_l"]: E(sc.EYE_C, (sc.EYE_R,) * 3),
            PART["tongue"]: E((0.0, sc.MOUTH_Y - 0.04, 0.165), (0.05, 0.026, 0.075), jaw),
            PART["cavity"]: E((0.0, sc.MOUTH_Y - 0.4 * m.drop, 0.16), (0.085, 0.06 + 0.6 * m.gap, 0.105)),
        }
        # Dental arches: vertical elliptic cylinders clipped to the band that shows.
        self.teeth = {
            PART["teeth_up"]: ((0.0, 0.2), (0.058, 0.056), (sc.MOUTH_Y - 0.012, sc.MOUTH_Y + 0.03)),
            PART["teeth_lo"]: ((0.0, 0.195 - 0.25 * m.drop), (0.052, 0.052),
                               (sc.MOUTH_Y - m.drop - 0.03, sc.MOUTH_Y - m.drop + 0.007)),
        }

    # -- carving rules, evaluated where each ray crosses the face plane ------------------
    def face_plane_xy(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dz = np.where(np.abs(d[2]) > 1e-6, d[2], -1e-6)
        s = (sc.FACE_PLANE_Z + self.mouth.protrude * 0.5 - o[2]) / dz
        return o[0] + s * d[0], o[1] + s * d[1]

    def in_mouth_hole(self, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        m = self.mouth
        return (np.abs(qx) < m.inner_w) & (qy < m.inner_upper(qx)) & (qy > m.inner_lower(qx))

    @staticmethod
    def in_eye_socket(qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        ex = np.abs(qx) - sc.EYE_C[0]
        ey = qy - sc.EYE_C[1]
        return (ex / 0.047) ** 2 + (ey / 0.033) ** 2 < 1.0

    def eye_open(self, p: np.ndarray, side: float) -> np.ndarray:
        """Is the lid-shell point p [3,N] inside the eye opening (eye-local x points outward)?"""
        ex = side * p[0] - sc.EYE_C[0]
        ey = p[1] - sc.EYE_C[1]
        upper, lower = sc.eye_lids(ex, self.state.blink)
        return (np.abs(ex) < sc.EYE_HALF_W) & (ey < upper) & (ey > lower)

    @staticmethod
    def in_hair(p: np.ndarray) -> np.ndarray:
        c, a = sc.HAIR
        n = (p - _col(c)) / _col(a)
        az = np.arctan2(n[0], n[2])
        line = -0.56 + 0.96 * smoothstep(-0.35, 0.8, n[2]) + 0.025 * np.sin(9 * az)
        # a side parting sweeps the fringe higher on one side
        line += 0.06 * smoothstep(0.2, 0.9, n[2]) * np.tanh(4 * n[0])
        return n[1] > line

    # -- tracing -----------------------------------------------------------------------
    def trace(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Head-frame rays [3,N] → (t, part, plane qx, plane qy); part −1 where the head is missed."""
        n = d.shape[1]
        o = np.broadcast_to(o, d.shape)
        best_t = np.full(n, INF, np.float32)
        best = np.full(n, -1, np.int16)
        qx, qy = self.face_plane_xy(o, d)
        hole = self.in_mouth_hole(qx, qy)
        carve = hole | self.in_eye_socket(qx, qy)
        dz = np.where(np.abs(d[2]) > 1e-6, d[2], -1e-6)

        def offer(pid: int, idx: np.ndarray, t: np.ndarray) -> None:
            cur = best_t[idx]
            better = (t > 1e-4) & (t < cur)
            best_t[idx] = np.where(better, t, cur)
            best[idx] = np.where(better, np.int16(pid), best[idx])

        skull_missed = None
        for pid, (c, a, rot) in self.ell.items():
            # cull: only rays passing near the part where they cross its centre depth
            r = float(a.max()) * 1.35 + 0.01
            if r < 0.25:
                s = (c[2] - o[2]) / dz
                near = (np.abs(o[0] + s * d[0] - c[0]) < r) & (np.abs(o[1] + s * d[1] - c[1]) < r)
                if pid == PART["cavity"] or pid == PART["tongue"]:
                    near &= hole
                idx = np.flatnonzero(near)
                if not len(idx):
                    continue
            else:
                idx = np.arange(n)
            oi, di = o[:, idx], d[:, idx]
            t0, t1 = rc.ellipsoid(oi, di, c, a, rot)
            if pid == PART["skull"]:
                skull_missed = ~np.isfinite(t0)
            if pid == PART["cavity"]:  # seen from inside: the far wall
                offer(pid, idx, t1)
                continue
            p = oi + np.where(np.isfinite(t0), t0, 0) * di
            if pid in sc.FACE_SKIN:
                t0 = np.where(carve[idx] & (p[2] > 0.05), INF, t0)
            elif pid == PART["lid_r"] or pid == PART["lid_l"]:
                t0 = np.where(self.eye_open(p, -1.0 if pid == PART["lid_r"] else 1.0), INF, t0)
            elif pid == PART["hair"]:
                # where the skull is missed the shell is the silhouette: keep it (no halo)
                t0 = np.where(self.in_hair(p) | skull_missed[idx], t0, INF)
            offer(pid, idx, t0)
        hidx = np.flatnonzero(hole)
        if len(hidx):
            for pid, (cxz, rxz, yr) in self.teeth.items():
                offer(pid, hidx, rc.y_cylinder(o[:, hidx], d[:, hidx], cxz, rxz, yr))
        return best_t, best, qx, qy

    def smooth_skin_normals(self, p: np.ndarray) -> np.ndarray:
        """Normals of the face skin blended across part seams (a smooth union for shading
        only; the silhouette stays the exact union). Each part weighs in by how close p
        lies to its surface, measured by its implicit function |local p|² − 1."""
        acc = np.zeros_like(p)
        for pid in sc.FACE_SKIN:
            c, a, rot = self.ell[pid]
            q = (p - _col(c)) / _col(a)
            f = (q * q).sum(0) - 1.0
            w = np.exp(-(np.maximum(f, 0) / 0.12) ** 2)
            acc += w * rc.ellipsoid_normal(p, c, a, rot)
        return acc / np.maximum(np.sqrt((acc * acc).sum(0)), 1e-9)

    def normals(self, pid: int, p: np.ndarray) -> np.ndarray:
        if pid in sc.FACE_SKIN:
            return self.smooth_skin_normals(p)
        if pid in self.teeth:
            cxz, rxz, _ = self.teeth[pid]
            return rc.y_cylinder_normal(p, cxz, rxz)
        c, a, rot = self.ell[pid]
        return rc.ellipsoid_normal(p, c, a, rot)


class OracleRenderer:
    """Renders FaceStates of one oracle subject (its textures and background fixed by seed)."""

    def __init__(self, size: int = 256, seed: int = 0) -> None:
        self.camera = Camera.default(size)
        rng = np.random.default_rng(seed)
        self.skin_tex = sc.Texture(rng, 24, (25.0, 90.0))
        self.fine_tex = sc.Texture(rng, 16, (150.0, 320.0))
        self.hair_tex = sc.Texture(rng, 12, (8.0, 30.0))
        self.cloth_tex = sc.Texture(rng, 10, (60.0, 140.0))
        self.iris_hue = float(rng.uniform(0, 1))
        self.background = background_image(size, rng)
        self._dirs = self.camera.pixel_dirs()
        self._bg = self.background.reshape(-1, 3).T.astype(np.float32) / 255.0

    # -- public ----------------------------------------------------------------------------
    def head_c2w(self, state: FaceState) -> np.ndarray:
        """Camera-to-head transform: the pose a NeRF of the head sees (scene units)."""
        h2b = state.head_to_body if state.head_to_body is not None else np.eye(4, dtype=np.float32)
        return (np.linalg.inv(h2b) @ self.camera.c2w_body).astype(np.float32)

    def render(self, state: FaceState) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rgb uint8 [S,S,3], labels uint8 [S,S], torso rgba uint8 [S,S,4], mouth interior bool [S,S])."""
        s = self.camera.size
        geo = HeadGeometry(state)
        head_c2w = self.head_c2w(state)
        tr = self._trace(geo, head_c2w, self._dirs, self._bg)
        part = tr.part.reshape(s, s)
        rgb, body_rgb = tr.rgb, tr.body_rgb
        alpha = tr.body_hit.astype(np.float32)
        # Anti-alias: re-trace pixels whose part differs from a neighbour with 4 sub-rays.
        diff_x = part[:, 1:] != part[:, :-1]
        diff_y = part[1:, :] != part[:-1, :]
        edge = np.zeros((s, s), bool)
        edge[:, 1:] |= diff_x
        edge[:, :-1] |= diff_x
        edge[1:, :] |= diff_y
        edge[:-1, :] |= diff_y
        pix = np.flatnonzero(edge)
        if len(pix):
            acc = np.zeros((3, len(pix)), np.float32)
            acc_b = np.zeros((3, len(pix)), np.float32)
            acc_a = np.zeros(len(pix), np.float32)
            bg = self._bg[:, pix]
            for off in _SUBPIXELS:
                sub = self._trace(geo, head_c2w, self.camera.pixel_dirs(off, pix), bg)
                acc += sub.rgb
                acc_b += sub.body_rgb * sub.body_hit
                acc_a += sub.body_hit
            rgb[:, pix] = acc / 4
            alpha[pix] = acc_a / 4
            body_rgb[:, pix] = acc_b / np.maximum(acc_a, 1)
        labels = np.where(part >= 0, sc.PART_LABEL[np.maximum(part, 0)], sc.LABEL_BG).astype(np.uint8)
        torso = np.concatenate([body_rgb * (alpha > 0), alpha[None]], 0)
        interior = np.isin(part, sc.MOUTH_INTERIOR)
        return _u8(rgb.T.reshape(s, s, 3)), labels, _u8(torso.T.reshape(s, s, 4)), interior

    def parts(self, state: FaceState) -> np.ndarray:
        """Which part each pixel centre sees: int16 [S,S] indices into PART_NAMES, −1 = background."""
        s = self.camera.size
        return self._trace(HeadGeometry(state), self.head_c2w(state), self._dirs, self._bg).part.reshape(s, s)

    def landmarks(self, state: FaceState) -> np.ndarray:
        """The 68 iBUG landmarks [68,2] in pixels, projected from exact 3D surface points."""
        return self.camera.project(landmarks_3d(state), self.head_c2w(state))

    # -- internals -------------------------------------------------------------------------
    def _trace(self, geo: HeadGeometry, head_c2w: np.ndarray, dirs: np.ndarray, bg: np.ndarray) -> Trace:
        n = dirs.shape[1]
        zero = np.zeros((3, 1), np.float32)
        ob, db = rc.transform_rays(self.camera.c2w_body, zero, dirs)
        oh, dh = rc.transform_rays(head_c2w, zero, dirs)
        # body: neck cylinder and shoulders (static in the body frame)
        t_neck = rc.y_cylinder(ob, db, *sc.NECK)
        t_torso, _ = rc.ellipsoid(ob, db, *sc.TORSO)
        body_t = np.minimum(t_neck, t_torso)
        body_part = np.where(t_neck <= t_torso, PART["neck"], PART["torso"]).astype(np.int16)
        body_hit = np.isfinite(body_t)
        # head, only for rays near it
        idx = np.flatnonzero(rc.sphere_bound(oh, dh, *sc.HEAD_BOUND))
        head_t = np.full(n, INF, np.float32)
        head_part = np.full(n, -1, np.int16)
        qx = np.zeros(n, np.float32)
        qy = np.zeros(n, np.float32)
        if len(idx):
            head_t[idx], head_part[idx], qx[idx], qy[idx] = geo.trace(oh, dh[:, idx])
        use_head = head_t < body_t
        part = np.where(use_head, head_part, np.where(body_hit, body_part, -1)).astype(np.int16)
        rgb = bg.copy()
        body_rgb = np.zeros((3, n), np.float32)
        for pid in (PART["neck"], PART["torso"]):
            sel = np.flatnonzero(body_hit & (body_part == pid))
            if len(sel):
                col = self._shade_body(pid, ob + body_t[sel] * db[:, sel], db[:, sel])
                body_rgb[:, sel] = col
                show = ~use_head[sel]
                rgb[:, sel[show]] = col[:, show]
        head_won = np.flatnonzero(use_head)
        hp = part[head_won]
        for pid in np.unique(hp).tolist():
            sel = head_won[hp == pid]
            p = oh + head_t[sel] * dh[:, sel]
            rgb[:, sel] = self._shade_head(geo, pid, p, dh[:, sel], qx[sel], qy[sel])
        return Trace(np.clip(rgb, 0, 1), part, np.clip(body_rgb, 0, 1), body_hit)

    def _shade_head(self, geo: HeadGeometry, pid: int, p: np.ndarray, view: np.ndarray,
                    qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        n = geo.normals(pid, p)
        k = p.shape[1]
        ptex = p - geo.jaw_offset[:, None] if pid in _JAW_PARTS else p  # texture sticks to the jaw
        if pid in sc.SKIN_PARTS:
            base = np.repeat(_col(sc.SKIN), k, 1)
            base *= 1 + 0.015 * self.skin_tex(ptex) + 0.012 * self.fine_tex(ptex)
            # warm cheeks
            for sx in (-1, 1):
                dc = ((p[0] - sx * 0.13) / 0.07) ** 2 + ((p[1] + 0.085) / 0.05) ** 2 + ((p[2] - 0.25) / 0.1) ** 2
                base += np.exp(-dc) * _col((0.025, -0.02, -0.012))
            spec = 0.06
            if pid in sc.FACE_SKIN:
                base, n, spec = self._lips(geo, base, n, qx, qy, p)
            elif pid in (PART["nose_tip"], PART["ala_r"], PART["ala_l"]):
                ax = np.abs(p[0])
                nostril = (n[1] < -0.6) & (ax > 0.01) & (ax < 0.03) & (p[2] > 0.295)
                base[:, nostril] *= 0.45
                base[0] += 0.02
            elif pid in (PART["lid_r"], PART["lid_l"]):
                side = -1.0 if pid == PART["lid_r"] else 1.0
                ex = side * p[0] - sc.EYE_C[0]
                ey = p[1] - sc.EYE_C[1]
                upper, lower = sc.eye_lids(ex, geo.state.blink)
                lash = (np.abs(ex) < sc.EYE_HALF_W * 1.08) & (ey >= upper - 1e-3) & (ey < upper + 0.0045)
                lash_lo = (np.abs(ex) < sc.EYE_HALF_W) & (ey <= lower + 1e-3) & (ey > lower - 0.002)
                base *= 0.93
                base[:, lash] = _col((0.09, 0.06, 0.05))
                base[:, lash_lo & ~lash] *= 0.75
            elif pid in (PART["ear_r"], PART["ear_l"]):
                base *= _col((1.0, 0.93, 0.92))
            return sc.shade(base, n, view, spec, 20.0)
        if pid == PART["hair"]:
            q = p - _col(geo.ell[pid][0])
            az = np.arctan2(q[0], q[2])
            strands = np.sin(260 * az + 60 * q[1] + 4 * self.hair_tex(p)) * 0.5 + 0.5
            base = _col(sc.HAIR_RGB) * (0.85 + 0.2 * strands)
            return sc.shade(base, n, view, 0.12, 12.0, ambient=0.3)
        if pid in (PART["brow_r"], PART["brow_l"]):
            return sc.shade(np.repeat(_col(sc.BROW_RGB), k, 1), n, view, 0.05)
        if pid in (PART["eye_r"], PART["eye_l"]):
            return self._eye(geo, pid, p, n, view)
        if pid in (PART["teeth_up"], PART["teeth_lo"]):
            gaps = np.clip(3 * np.abs(np.sin(np.pi * p[0] / 0.0125)), 0, 1)
            base = _col((0.93, 0.91, 0.84)) * (0.78 + 0.22 * gaps)
            return sc.shade(base, n, view, 0.25, 30.0) * self._mouth_darkness(geo, p)
        if pid == PART["tongue"]:
            base = np.repeat(_col((0.78, 0.36, 0.38)), k, 1)
            return sc.shade(base, n, view, 0.2) * self._mouth_darkness(geo, p) * 0.8
        if pid == PART["cavity"]:
            depth = np.clip((0.25 - p[2]) / 0.15, 0, 1)
            return _col((0.45, 0.14, 0.14)) * (1 - 0.6 * depth) * self._mouth_darkness(geo, p)
        raise AssertionError(f"no material for part {pid}")

    @staticmethod
    def _mouth_darkness(geo: HeadGeometry, p: np.ndarray) -> np.ndarray:
        # occlusion: the narrower the opening and the deeper the point, the darker
        depth = np.clip((0.3 - p[2]) / 0.12, 0, 1)
        return (0.45 + 0.5 * np.clip(geo.mouth.gap / 0.06, 0, 1)) * (1 - 0.5 * depth)

    def _lips(self, geo: HeadGeometry, base: np.ndarray, n: np.ndarray, qx: np.ndarray, qy: np.ndarray,
              p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        m = geo.mouth
        front = p[2] > 0.15
        iu, ou = m.inner_upper(qx), m.outer_upper(qx)
        il, ol = m.inner_lower(qx), m.outer_lower(qx)
        soft = 0.0022
        up = front * smoothstep(-soft, soft, ou - qy) * (qy >= il - soft)
        lo = front * smoothstep(-soft, soft, qy - ol) * (qy <= iu + soft)
        w = np.clip(np.maximum(up, lo), 0, 1) * (np.abs(qx) < m.half_w * 1.02)
        lip = _col(sc.LIP_RGB) * (1 + 0.03 * self.fine_tex(p))
        base = base * (1 - w) + lip * w
        # bump: lips bulge, so normals tilt up on the upper lip's top and down below
        tu = np.clip((qy - iu) / np.maximum(ou - iu, 1e-4), 0, 1)
        tl = np.clip((il - qy) / np.maximum(il - ol, 1e-4), 0, 1)
        tilt = np.where(qy >= (iu + il) / 2, (tu - 0.35) * 1.4, -(tl - 0.35) * 1.4) * w
        n = n + np.stack([np.zeros_like(tilt), tilt, np.zeros_like(tilt)])
        n = n / np.sqrt((n * n).sum(0))
        # a thin dark line where closed lips meet
        if m.gap < 0.004:
            seam = front * (np.abs(qx) < m.half_w * 0.95) * np.exp(-((qy - (iu + il) / 2) / 0.0016) ** 2)
            base = base * (1 - 0.45 * seam)
        return base, n, 0.1

    def _eye(self, geo: HeadGeometry, pid: int, p: np.ndarray, n: np.ndarray, view: np.ndarray) -> np.ndarray:
        side = -1.0 if pid == PART["eye_r"] else 1.0
        centre = sc.EYE_C * np.array([side, 1, 1], np.float32)
        v = (p - centre[:, None]) / sc.EYE_R
        gaze = np.array([-side * 0.06, -0.03, 1.0], np.float32)  # slight convergence
        gaze /= np.linalg.norm(gaze)
        ang = np.arccos(np.clip(gaze @ v, -1, 1))
        az = np.arctan2(v[1], v[0] - gaze[0])
        iris_col = _col(sc.IRIS_BROWN) * (1 - self.iris_hue) + _col(sc.IRIS_BLUE) * self.iris_hue
        streak = 0.8 + 0.2 * np.sin(23 * az) * np.sin(7 * az + 1.0)
        iris = iris_col * (streak * (0.75 + 0.5 * ang / 0.5))
        sclera = _col((0.95, 0.93, 0.9)) * (1 - 0.25 * smoothstep(0.6, 1.3, ang))
        w_iris = smoothstep(0.53, 0.49, ang)
        w_pupil = smoothstep(0.22, 0.19, ang)
        base = (sclera * (1 - w_iris) + iris * w_iris) * (1 - 0.5 * np.exp(-((ang - 0.5) / 0.04) ** 2))
        base = base * (1 - w_pupil) + 0.03 * w_pupil
        # the upper lid casts a soft shadow on the eyeball
        upper, _ = sc.eye_lids(side * p[0] - sc.EYE_C[0], geo.state.blink)
        shadow = 1 - 0.4 * np.exp(-np.clip(upper - (p[1] - sc.EYE_C[1]), 0, None) / 0.006)
        return sc.shade(base * shadow, n, view, 0.7, 90.0, ambient=0.5)

    def _shade_body(self, pid: int, p: np.ndarray, view: np.ndarray) -> np.ndarray:
        k = p.shape[1]
        if pid == PART["neck"]:
            cxz, rxz, _ = sc.NECK
            n = rc.y_cylinder_normal(p, cxz, rxz)
            base = np.repeat(_col(sc.NECK_RGB), k, 1) * (1 + 0.03 * self.skin_tex(p))
            base *= 1 - 0.38 * smoothstep(-0.5, -0.3, p[1])  # the jaw shades the top of the neck
            return sc.shade(base, n, view, 0.04)
        c, a = sc.TORSO
        n = rc.ellipsoid_normal(p, c, a)
        neckline = (p[0] / 0.17) ** 2 + ((p[1] - sc.NECKLINE_Y) / 0.17) ** 2
        skin = (neckline < 1.0) & (p[2] > -0.05)
        trim = (neckline >= 1.0) & (neckline < 1.35) & (p[2] > -0.05)
        base = _col(sc.SHIRT_RGB) * (1 + 0.05 * self.cloth_tex(p))
        base = np.where(skin, _col(sc.NECK_RGB), base)
        base[:, trim] *= 0.72
        return sc.shade(base, n, view, 0.03, 8.0)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def background_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft studio backdrop: vertical gradient plus a few large out-of-focus shapes."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    top = np.array([0.80, 0.82, 0.84], np.float32)
    bottom = np.array([0.56, 0.60, 0.66], np.float32)
    img = top * (1 - y[..., None]) + bottom * y[..., None]
    for _ in range(5):
        c = rng.uniform(0, 1, 2)
        r = rng.uniform(0.12, 0.3)
        tint = rng.uniform(-0.08, 0.08, 3).astype(np.float32)
        img += np.exp(-(((x - c[0]) ** 2 + (y - c[1]) ** 2) / (r * r)))[..., None] * tint
    vignette = 1 - 0.18 * ((x - 0.5) ** 2 + (y - 0.45) ** 2)
    return _u8(img * vignette[..., None])


def landmarks_3d(state: FaceState) -> np.ndarray:
    """The 68 iBUG points [68,3] in the head frame, lying on the exact surfaces.

    Index order follows iBUG-300W: 0–16 jaw (subject's right → left, i.e. −x → +x),
    17–26 brows, 27–35 nose, 36–47 eyes, 48–59 outer lips, 60–67 inner lips.
    """
    geo = HeadGeometry(state)
    m = geo.mouth
    pts = np.zeros((68, 3), np.float32)
    # jaw line: on the jaw ellipsoid just in front of its widest contour; the chin end
    # follows the jaw drop fully, the ends near the ears barely move.
    c0, a = np.asarray(sc.JAW[0], np.float32), np.asarray(sc.JAW[1], np.float32)
    theta = -np.pi / 2 + np.arange(17) * np.pi / 16
    s = 0.96
    pts[:17, 0] = c0[0] + a[0] * s * np.sin(theta)
    pts[:17, 1] = c0[1] - a[1] * s * np.cos(theta) + 0.04 * np.abs(np.sin(theta)) ** 4
    pts[:17, 2] = c0[2] + a[2] * np.sqrt(1 - s * s)
    pts[:17] += geo.jaw_offset[None, :] * np.cos(theta)[:, None]
    xy = np.zeros((68, 2), np.float32)
    # brows: right brow outer→inner, then left brow inner→outer
    j = np.arange(5) / 4.0
    bx = sc.BROW[0][0] + 0.046 * (1 - 2 * j)
    by = sc.BROW[0][1] + 0.009 - 0.12 * (bx - sc.BROW[0][0]) - 0.006 * (2 * j - 1) ** 2
    xy[17:22] = np.stack([-bx, by], 1)
    xy[22:27] = np.stack([bx[::-1], by[::-1]], 1)
    # nose bridge top → tip, then nostril base right → left
    xy[27:31] = [(0, 0.045), (0, 0.008), (0, -0.03), (0, -0.07)]
    xy[31:36] = [(-0.031, -0.097), (-0.016, -0.102), (0, -0.105), (0.016, -0.102), (0.031, -0.097)]
    # outer lips, from the right corner over the top, back along the bottom
    hw = m.half_w
    up_x = np.array([-0.6, -0.27, 0.0, 0.27, 0.6]) * hw
    lo_x = -up_x
    mid = float(m.inner_upper(np.zeros(1))[0] + m.inner_lower(np.zeros(1))[0]) / 2
    xy[48] = (-hw, mid)
    xy[49:54] = np.stack([up_x, m.outer_upper(up_x) - 0.0015], 1)
    xy[54] = (hw, mid)
    xy[55:60] = np.stack([lo_x, m.outer_lower(lo_x) + 0.0015], 1)
    # inner lips: corners, upper edge (right→left), lower edge (left→right)
    iw = m.inner_w
    iu_x = np.array([-0.5, 0.0, 0.5]) * iw
    xy[60] = (-iw, mid)
    xy[61:64] = np.stack([iu_x, m.inner_upper(iu_x) + 0.0012], 1)
    xy[64] = (iw, mid)
    xy[65:68] = np.stack([-iu_x, m.inner_lower(-iu_x) - 0.0012], 1)
    # put every face point on the surface with an orthographic ray along −z
    cast = np.r_[17:36, 48:68]
    o = np.stack([xy[cast, 0], xy[cast, 1], np.full(len(cast), 2.0, np.float32)])
    d = np.tile(np.array([[0], [0], [-1]], np.float32), (1, len(cast)))
    t, _, _, _ = geo.trace(o, d)
    z = np.where(np.isfinite(t), 2.0 - t, sc.FACE_PLANE_Z)
    pts[cast] = np.concatenate([xy[cast], z[:, None]], 1)
    # eyes: on the lid shell along the lid edges (outward eye-local x, side −1 = right eye)
    w = sc.EYE_HALF_W
    eyes = {36: (-1, w, "c"), 37: (-1, w / 3, "u"), 38: (-1, -w / 3, "u"), 39: (-1, -w, "c"),
            40: (-1, -w / 3, "l"), 41: (-1, w / 3, "l"),
            42: (1, -w, "c"), 43: (1, -w / 3, "u"), 44: (1, w / 3, "u"), 45: (1, w, "c"),
            46: (1, w / 3, "l"), 47: (1, -w / 3, "l")}
    for i, (side, ex, which) in eyes.items():
        upper, lower = sc.eye_lids(np.array([ex], np.float32), state.blink)
        ey = {"u": upper[0], "l": lower[0], "c": (upper[0] + lower[0]) / 2}[which]
        z = sc.EYE_C[2] + np.sqrt(max(sc.LID_R ** 2 - ex * ex - ey * ey, 0.0))
        pts[i] = (side * (sc.EYE_C[0] + ex), sc.EYE_C[1] + ey, z)
    return pts
