"""Head pose and camera intrinsics without a 3DMM: the subject's own rigid face shape,
perspective-n-point per frame, the focal length that explains the video best.

FaceMesh gives every frame x, y in pixels and a depth z on the scale of x. For a trial
focal length f each frame's points are lifted to metric camera space (the face put at
the distance where its outer eye corners lie `EYE_SPAN_M` apart), the lifted frames are
rigidly aligned (Procrustes) over the points that move least (no lips, lids or jaw) and
averaged into one rigid shape, and that shape is fitted back to every frame with
`cv2.solvePnP`. The wrong f leaves perspective the lifted shapes disagree on; the focal
is the one with the least reprojection error (golden-section search on log f). Poses are
smoothed over time and written as ER-NeRF camera-to-world matrices: OpenGL axes, file
units of metres, the head at the origin (between the eyes, `HEAD_CENTRE_DEPTH_M` behind
the nose tip) with x to the image's right, y up and the face looking down +z, as the
oracle's head, so that after `nerf_matrix_to_ngp` (×POSE_SCALE) the head fills the
renderer's AABB [−1,−0.5,−1, 1,0.5,1] the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

#: Distance between the outer eye corners (FaceMesh 33, 263): the adult mean, which sets the metric scale.
EYE_SPAN_M = 0.09
#: The head's centre lies this far behind the nose tip (FaceMesh 1).
HEAD_CENTRE_DEPTH_M = 0.095
#: Share of the 468 mesh points (by least non-rigid motion) that the rigid shape is fitted on.
RIGID_SHARE = 0.5
#: Focal lengths searched, in crop sizes (fields of view from ~90° down to ~7°).
FOCAL_RANGE = (0.5, 8.0)
#: Temporal smoothing of rotation and translation (Gaussian sigma, seconds).
SMOOTH_SECONDS = 0.04
_OUTER_EYES = (33, 263)
_NOSE_TIP, _CHIN, _FOREHEAD = 1, 152, 10
#: OpenCV camera (x right, y down, z forward) ↔ OpenGL camera (x right, y up, z backward).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class PoseTrack:
    focal: float  #: pixels of the crop
    cx: float
    cy: float
    c2w: np.ndarray  #: float64 [N,4,4] camera-to-head, OpenGL, metres (ER-NeRF file units)
    shape: np.ndarray  #: float64 [468,3] the rigid face in the head frame (metres)
    rigid: np.ndarray  #: int indices of the mesh points the pose is fitted on
    reprojection_px: np.ndarray  #: float [N] RMS reprojection error per frame (before smoothing)
    focal_curve: list[tuple[float, float]]  #: (focal, mean error) at every focal tried


def _align(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t with R·src + t ≈ dst in least squares (Kabsch)."""
    ms, md = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((dst - md).T @ (src - ms))
    d = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag([1.0, 1.0, d]) @ vt
    return r, md - r @ ms


def _mean_shape(clouds: np.ndarray, subset: np.ndarray, iters: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes: (mean cloud [P,3], per-point residuals [T,P]) of clouds [T,P,3]
    aligned rigidly over `subset`."""
    mean = clouds[len(clouds) // 2]
    for _ in range(iters):
        aligned = np.empty_like(clouds)
        for k, c in enumerate(clouds):
            r, t = _align(c[subset], mean[subset])
            aligned[k] = c @ r.T + t
        mean = aligned.mean(0)
    return mean, np.linalg.norm(aligned - mean, axis=-1)


def rigid_points(mesh_px: np.ndarray) -> np.ndarray:
    """The mesh points that move least relative to the face (no lips, lids, jaw). Ranked by
    their 90th-percentile residual, so that lids, which move only while blinking, rank low."""
    clouds = mesh_px[:, :468] * np.array([1.0, -1.0, -1.0])
    _, residual = _mean_shape(clouds, np.arange(468))
    return np.sort(np.argsort(np.percentile(residual, 90, axis=0))[: int(RIGID_SHARE * 468)])


def lift(mesh_px: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """FaceMesh points [..., P,3] in crop pixels → metric OpenCV camera space for focal `focal`."""
    p = np.asarray(mesh_px, np.float64)
    span = np.linalg.norm(p[..., _OUTER_EYES[1], :] - p[..., _OUTER_EYES[0], :], axis=-1)
    z0 = focal * EYE_SPAN_M / span  # distance of the face for that focal
    z = z0[..., None] * (1.0 + p[..., 2] / focal)
    return np.stack([(p[..., 0] - cx) * z / focal, (p[..., 1] - cy) * z / focal, z], -1)


def _head_frame(shape_cam: np.ndarray) -> np.ndarray:
    """A mean shape in camera space → the same shape in the head frame (x right, y up, z forward)."""
    s = shape_cam * np.array([1.0, -1.0, -1.0])  # to OpenGL-like axes: y up, z toward the camera
    x = s[_OUTER_EYES[1]] - s[_OUTER_EYES[0]]
    x /= np.linalg.norm(x)
    y = s[_FOREHEAD] - s[_CHIN]
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    axes = np.stack([x, y, np.cross(x, y)])
    out = (s - (s[_OUTER_EYES[0]] + s[_OUTER_EYES[1]]) / 2) @ axes.T
    out[:, 2] -= out[_NOSE_TIP, 2] - HEAD_CENTRE_DEPTH_M
    return out


class _Pnp:
    """PnP of one rigid shape over frames, each solve started from the previous frame's pose."""

    def __init__(self, shape: np.ndarray, rigid: np.ndarray, focal: float, cx: float, cy: float) -> None:
        self.obj = np.ascontiguousarray(shape[rigid], np.float64)
        self.rigid = rigid
        self.k = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1.0]])
        self.prev: tuple[np.ndarray, np.ndarray] | None = None

    def solve(self, mesh_px: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        import cv2

        img = np.ascontiguousarray(mesh_px[self.rigid, :2], np.float64)
        if self.prev is None:  # frontal guess: head frame y up / z toward camera → camera y down / z forward
            span = np.linalg.norm(mesh_px[_OUTER_EYES[1], :2] - mesh_px[_OUTER_EYES[0], :2])
            z = self.k[0, 0] * EYE_SPAN_M / max(span, 1e-6)
            c = img.mean(0)
            rvec = np.array([np.pi, 0.0, 0.0])
            tvec = np.array([(c[0] - self.k[0, 2]) * z / self.k[0, 0], (c[1] - self.k[1, 2]) * z / self.k[0, 0], z])
        else:
            rvec, tvec = self.prev
        _, rvec, tvec = cv2.solvePnP(self.obj, img, self.k, None, rvec.copy(), tvec.copy(),
                                     useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        rvec, tvec = rvec.reshape(3), tvec.reshape(3)
        self.prev = (rvec, tvec)
        proj, _ = cv2.projectPoints(self.obj, rvec, tvec, self.k, None)
        err = float(np.sqrt(((proj[:, 0] - img) ** 2).sum(-1).mean()))
        return rvec, tvec, err


def _fit(mesh_px: np.ndarray, frames: np.ndarray, rigid: np.ndarray, focal: float, cx: float,
         cy: float) -> tuple[np.ndarray, float]:
    """(head-frame shape, mean reprojection error over `frames`) for one focal length."""
    shape = _head_frame(_mean_shape(lift(mesh_px[frames, :468], focal, cx, cy), rigid)[0])
    pnp = _Pnp(shape, rigid, focal, cx, cy)
    return shape, float(np.mean([pnp.solve(mesh_px[i])[2] for i in frames]))


def estimate_focal(mesh_px: np.ndarray, rigid: np.ndarray, size: int, cx: float, cy: float,
                   n_frames: int = 60, iters: int = 14) -> tuple[float, list[tuple[float, float]]]:
    """Golden-section search over log focal on up to `n_frames` frames spread over the video."""
    frames = np.unique(np.linspace(0, len(mesh_px) - 1, min(n_frames, len(mesh_px))).astype(int))
    curve: dict[float, float] = {}

    def err(log_f: float) -> float:
        f = float(np.exp(log_f))
        if f not in curve:
            curve[f] = _fit(mesh_px, frames, rigid, f, cx, cy)[1]
        return curve[f]

    g = (np.sqrt(5) - 1) / 2
    a, b = np.log(FOCAL_RANGE[0] * size), np.log(FOCAL_RANGE[1] * size)
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(iters):
        if err(c) < err(d):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    best = min(curve, key=curve.get)
    return best, sorted((round(f, 2), round(e, 5)) for f, e in curve.items())


def smooth_poses(rvecs: np.ndarray, tvecs: np.ndarray, sigma_frames: float,
                 unreliable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian smoothing of rotations (as rotation vectors about their mean) and translations;
    `unreliable` frames take the pose interpolated from their reliable neighbours first."""
    rots = Rotation.from_rotvec(rvecs)
    mean = rots.mean()
    local = (mean.inv() * rots).as_rotvec()
    tvecs = np.array(tvecs, np.float64)
    if unreliable is not None and unreliable.any() and not unreliable.all():
        t = np.arange(len(local))
        ok = ~unreliable
        for track in (local, tvecs):
            for j in range(3):
                track[unreliable, j] = np.interp(t[unreliable], t[ok], track[ok, j])
    if sigma_frames > 0 and len(local) >= 3:
        local = gaussian_filter1d(local, sigma_frames, axis=0, mode="nearest")
        tvecs = gaussian_filter1d(tvecs, sigma_frames, axis=0, mode="nearest")
    return (mean * Rotation.from_rotvec(local)).as_rotvec(), tvecs


def to_c2w(rvecs: np.ndarray, tvecs: np.ndarray) -> np.ndarray:
    """OpenCV head→camera poses → OpenGL camera-to-head matrices [N,4,4]."""
    r_cv = Rotation.from_rotvec(rvecs).as_matrix()
    r_gl = _CV_TO_GL @ r_cv  # head → OpenGL camera
    t_gl = tvecs @ _CV_TO_GL
    out = np.tile(np.eye(4), (len(rvecs), 1, 1))
    out[:, :3, :3] = np.transpose(r_gl, (0, 2, 1))
    out[:, :3, 3] = -np.einsum("nji,nj->ni", r_gl, t_gl)
    return out


def track_pose(mesh_px: np.ndarray, size: int, cx: float, cy: float, fps: float,
               unreliable: np.ndarray | None = None, shape_frames: int = 300) -> PoseTrack:
    """Focal, rigid shape and smoothed camera-to-head poses for FaceMesh points [N,478,3] in
    crop pixels (continuous coordinates). `unreliable` marks frames whose mesh is distorted
    (FaceMesh squashes the whole face while the eyes shut): their poses are interpolated."""
    rigid = rigid_points(mesh_px[np.unique(np.linspace(0, len(mesh_px) - 1, min(200, len(mesh_px))).astype(int))])
    focal, curve = estimate_focal(mesh_px, rigid, size, cx, cy)
    frames = np.unique(np.linspace(0, len(mesh_px) - 1, min(shape_frames, len(mesh_px))).astype(int))
    shape = _head_frame(_mean_shape(lift(mesh_px[frames, :468], focal, cx, cy), rigid)[0])
    pnp = _Pnp(shape, rigid, focal, cx, cy)
    rvecs, tvecs, errs = zip(*(pnp.solve(m) for m in mesh_px))
    rvecs, tvecs = smooth_poses(np.array(rvecs), np.array(tvecs), SMOOTH_SECONDS * fps, unreliable)
    return PoseTrack(focal, cx, cy, to_c2w(rvecs, tvecs), shape, rigid, np.array(errs), curve)


def photo_pose(mesh_px: np.ndarray, focal: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray, float]:
    """One picture's head pose at a chosen focal: (OpenCV head→camera rvec, tvec, RMS px).
    The rigid shape is the picture's own lifted mesh, so the fit is near exact and the
    pose is the head frame of that mesh (x through the outer eye corners, y up the face)."""
    mesh_px = np.asarray(mesh_px, np.float64)
    shape = _head_frame(lift(mesh_px[:468], focal, cx, cy))
    rigid = np.arange(468)
    return _Pnp(shape, rigid, focal, cx, cy).solve(mesh_px)
