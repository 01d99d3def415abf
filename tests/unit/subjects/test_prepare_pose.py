"""`subject prepare` head pose on a synthetic rigid face seen through a known pinhole camera:
the focal search finds the camera, the poses reproduce the head's motion, and the matrices
follow the dataset's conventions (oracle projection, renderer space)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

pytest.importorskip("cv2", reason="needs the preprocess extra (opencv-python-headless)")

from services.renderer.rays import DEFAULT_AABB, nerf_matrix_to_ngp  # noqa: E402
from services.subjects.layout import POSE_SCALE  # noqa: E402
from services.subjects.oracle_render import Camera  # noqa: E402
from services.subjects.prepare.pose import track_pose  # noqa: E402
from services.subjects.prepare.preview import head_angles  # noqa: E402

SIZE, FOCAL, N = 256, 2.0 * 256, 150
CV_FRONTAL = np.diag([1.0, -1.0, -1.0])  # head frame (y up, z toward the camera) → OpenCV camera


def _face(rng: np.random.Generator) -> np.ndarray:
    """478 points on the front of a head-sized ellipsoid (metres; x right, y up, z forward),
    with the landmarks the pose module names put where a face has them."""
    theta = rng.uniform(-1.2, 1.2, 478)
    phi = rng.uniform(-1.1, 1.1, 478)
    pts = np.stack([0.075 * np.sin(theta) * np.cos(phi), 0.1 * np.sin(phi), 0.09 * np.cos(theta) * np.cos(phi)], 1)
    pts[1] = (0.0, -0.035, 0.115)  # nose tip
    pts[33], pts[263] = (-0.045, 0.0, 0.07), (0.045, 0.0, 0.07)  # outer eye corners
    pts[10], pts[152] = (0.0, 0.065, 0.075), (0.0, -0.11, 0.07)  # forehead, chin
    return pts


def _frames(shape: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh-like points [N,478,3] (pixels; z on the scale of x) and the head's Euler angles."""
    t = np.arange(N) / 25.0
    angles = np.stack([6 * np.sin(0.9 * t), 12 * np.sin(0.6 * t + 1), 4 * np.sin(1.3 * t)], 1)  # degrees
    out = np.empty((N, 478, 3))
    for k in range(N):
        r = CV_FRONTAL @ Rotation.from_euler("xyz", angles[k], degrees=True).as_matrix()
        cam = shape @ r.T + (0.03 * np.sin(t[k]), 0.01 * np.cos(t[k]), 0.7 + 0.03 * np.sin(0.5 * t[k]))
        z_ref = cam[:, 2].mean()
        out[k, :, 0] = SIZE / 2 + FOCAL * cam[:, 0] / cam[:, 2]
        out[k, :, 1] = SIZE / 2 + FOCAL * cam[:, 1] / cam[:, 2]
        out[k, :, 2] = FOCAL * (cam[:, 2] - z_ref) / z_ref
    out[..., :2] += rng.normal(0, 0.25, out[..., :2].shape)  # landmark jitter
    return out, angles


@pytest.fixture(scope="module")
def track():
    rng = np.random.default_rng(3)
    shape = _face(rng)
    mesh, angles = _frames(shape, rng)
    return track_pose(mesh, SIZE, SIZE / 2, SIZE / 2, fps=25), mesh, angles


def test_focal_search_finds_the_camera(track) -> None:
    pose, _, _ = track
    assert pose.focal == pytest.approx(FOCAL, rel=0.25)
    errors = dict(pose.focal_curve)
    assert min(errors.values()) < errors[min(errors)] and min(errors.values()) < errors[max(errors)]


def test_poses_follow_the_head(track) -> None:
    pose, _, angles = track
    assert np.median(pose.reprojection_px) < 0.6
    got = head_angles(pose.c2w)
    np.testing.assert_allclose(got, angles, atol=2.0)  # degrees, after smoothing


def test_matrices_project_like_the_oracle(track) -> None:
    """The oracle's projection of the rigid shape through each c2w lands on the landmarks."""
    pose, mesh, _ = track
    cam = Camera(SIZE, pose.focal, pose.cx, pose.cy, np.eye(4))
    for k in (0, 40, 149):
        px = cam.project(pose.shape[pose.rigid], pose.c2w[k])
        err = np.linalg.norm(px - (mesh[k, pose.rigid, :2] - 0.5), axis=1)
        assert np.median(err) < 1.0


def test_head_sits_in_the_renderer_aabb_in_front_of_the_camera(track) -> None:
    pose, _, _ = track
    ngp = nerf_matrix_to_ngp(torch.from_numpy(pose.c2w).float(), scale=POSE_SCALE).numpy()
    lo, hi = np.array(DEFAULT_AABB[:3]), np.array(DEFAULT_AABB[3:])
    pts = pose.shape * POSE_SCALE  # head frame → scene units; the same permutation as the poses
    pts = pts[:, [1, 2, 0]]
    assert np.all((pts > lo) & (pts < hi))
    to_head = -ngp[:, :3, 3] / np.linalg.norm(ngp[:, :3, 3], axis=1, keepdims=True)
    forward = ngp[:, :3, 2]  # renderer cameras look down +z
    assert np.all(np.einsum("ni,ni->n", to_head, forward) > np.cos(np.radians(15)))
    assert np.median(np.linalg.norm(pose.c2w[:, :3, 3], axis=1)) == pytest.approx(0.7, rel=0.3)


def test_poses_of_unreliable_frames_are_interpolated() -> None:
    from services.subjects.prepare.pose import smooth_poses

    n = 20
    rvecs = np.tile([np.pi, 0.0, 0.0], (n, 1))
    rvecs[:, 1] = np.linspace(0, 0.2, n)
    tvecs = np.tile([0.0, 0.0, 0.7], (n, 1))
    bad = np.zeros(n, bool)
    bad[8:11] = True
    jolted_r, jolted_t = rvecs.copy(), tvecs.copy()
    jolted_r[bad, 1] += 0.3  # a blink's distortion
    jolted_t[bad, 2] += 0.05
    r, t = smooth_poses(jolted_r, jolted_t, 0.0, bad)
    np.testing.assert_allclose(Rotation.from_rotvec(r).as_matrix(), Rotation.from_rotvec(rvecs).as_matrix(), atol=1e-3)
    np.testing.assert_allclose(t, tvecs, atol=1e-9)
