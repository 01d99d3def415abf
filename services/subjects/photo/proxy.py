"""The photo head proxy: one photo as a textured, articulated 3D head that the oracle's
tracks drive, rendered exactly for any speech (the oracle's interface, so the same
dataset writer takes its frames).

The mesh is the photo's pixel grid over the person (two triangles per pixel cell), each
vertex at its pixel's depth (`relief`) and textured with its own pixel, so the rest pose
renders the photo itself, its own mouth included: the rest is the photo's mouth (parted
lips and teeth where it smiles so), silence returns to it and the visemes move from it.
What the photo shows between its lips stays on the mesh, a little behind the lips, the
upper part with the upper lip and the lower with the jaw. Per frame: the mouth and lids
move the vertices in the face's plane (`articulate`), the head turns about its centre
(the head part fully, the torso not at all, the neck in between), the frame is
rasterised over the inpainted background with the synthesised mouth interior
(`interior`) showing where the lips part wider than the photo's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial.transform import Rotation

from services.common.types import VIDEO_FPS, Speech
from services.subjects import raycast as rc
from services.subjects.layout import LABEL_BG, LABEL_HEAD, LABEL_TORSO
from services.subjects.oracle import FrameMeta, HeadMotion, OracleFrame, SpeakingSubject, speech_tracks
from services.subjects.photo.articulate import INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER, PHOTO_ROUND, FaceRig
from services.subjects.photo.face import PhotoFace
from services.subjects.photo.interior import MouthColours, paint_interior
from services.subjects.photo.raster import grid_triangles, interpolate, rasterize, sample_bilinear
from services.subjects.photo.relief import depth_map
from services.subjects.prepare.landmarks import to_ibug68
from services.subjects.prepare.parsing import CHEEKS, parse, polygon_mask, torso_layer
from services.subjects.prepare.pose import EYE_SPAN_M, lift, photo_pose, to_c2w
from services.subjects.visemes import REST, rest_share, speech_units

#: Person pixels (segmentation probability) that carry a mesh vertex, and the soft edge above it.
PERSON_FLOOR, PERSON_SOLID = 0.3, 0.7
#: How much of the oracle's head motion the photo head makes (its poses are the oracle's, a little smaller).
MOTION_SHARE = 0.8
#: How far behind the lips what the photo shows between them lies (metres): the upper part,
#: and the lower (the lower teeth sit behind the upper ones when the jaw closes).
INSIDE_BEHIND_M = (0.006, 0.009)


@dataclass(frozen=True)
class PhotoState:
    """One frame's articulation and head turn (radians, head frame: pitch down, yaw, roll)."""

    open: float = 0.0
    round: float = 0.3
    blink: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0


def _background(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from services.subjects.prepare.background import BackgroundBuilder

    builder = BackgroundBuilder(1, image.shape[0])
    builder.add(image, labels)
    return builder.build()[0]


class PhotoHead(SpeakingSubject):
    """A photo made into a head that speaks: `frame(state)` renders one frame exactly."""

    def __init__(self, face: PhotoFace, person: np.ndarray, seed: int = 0) -> None:
        s = face.size
        self.face = face
        self.size, self.seed = s, seed
        self.focal = face.focal
        self.cx = self.cy = s / 2.0  # continuous coordinates; grid coordinates are 0.5 less
        self._c = s / 2.0 - 0.5
        self.texture = face.image.astype(np.float32)
        self.photo_labels = parse(face.image, face.mesh, person)
        self.background = _background(face.image, self.photo_labels)
        mesh_grid = face.mesh[:, :2] - 0.5
        self.rig = FaceRig(mesh_grid)
        # camera geometry: the photo's pose and the metric scale of its face
        self.rvec, self.tvec, _ = photo_pose(face.mesh, self.focal, self.cx, self.cy)
        self.r_h2c = Rotation.from_rotvec(self.rvec).as_matrix()
        lifted = lift(face.mesh, self.focal, self.cx, self.cy)
        span = float(np.linalg.norm(face.mesh[263, :2] - face.mesh[33, :2]))
        m_per_px = EYE_SPAN_M / span
        solid = person > PERSON_FLOOR
        self.depth = depth_map(lifted, mesh_grid, solid, float(self.tvec[2]), m_per_px, self.rig.face_h)
        # vertices: every person pixel
        yy, xx = np.mgrid[0:s, 0:s]
        self.vert = np.flatnonzero(solid.reshape(-1))
        self.vxy = np.stack([xx.reshape(-1)[self.vert], yy.reshape(-1)[self.vert]], -1).astype(np.float64)
        self.vz = self.depth.reshape(-1)[self.vert]
        self.valpha = np.clip((person.reshape(-1)[self.vert] - PERSON_FLOOR) / (PERSON_SOLID - PERSON_FLOOR), 0, 1)
        head = (self.photo_labels == LABEL_HEAD).astype(np.float64)
        weight = np.maximum(gaussian_filter(head, 0.05 * s), gaussian_filter(head, 0.01 * s))
        weight = np.clip((weight - 0.1) / 0.8, 0, 1) * solid
        self.vweight = weight.reshape(-1)[self.vert]
        self.vlower = self.rig.lower_side(self.vxy)
        # what the photo shows between its lips: behind them, so the lips cover it as they close
        inside = self.rig.in_photo_mouth(self.vxy)
        self.vz = self.vz + np.where(inside, np.where(self.vlower, *INSIDE_BEHIND_M[::-1]), 0.0)
        # triangles over the compact vertex list; opened wider than the photo, the mesh parts
        # where the lips meet (and between the photo's teeth), and the synthesised inside shows
        index = np.full(s * s, -1, np.int64)
        index[self.vert] = np.arange(len(self.vert))
        tris = index[grid_triangles(solid)]
        seam = self.rig.near_seam(self.vxy)[tris]
        crossing = seam.any(1) & (self.vlower[tris].any(1) & ~self.vlower[tris].all(1))
        #: (triangles, which of them lie between the photo's lips): at the rest and opened wider
        self.tris_rest = (tris, inside[tris].all(1))
        self.tris_open = (tris[~crossing], inside[tris[~crossing]].all(1))
        # the 478 landmarks ride along: their depth, head weight and side
        self.mesh_grid = mesh_grid
        self.mz = sample_bilinear(self.depth[..., None], mesh_grid[:, 0], mesh_grid[:, 1])[:, 0]
        self.mweight = sample_bilinear(weight[..., None], mesh_grid[:, 0], mesh_grid[:, 1])[:, 0]
        self.mlower = self.rig.lower_side(mesh_grid)
        self.mlower[INNER_UPPER] = False
        self.mlower[INNER_LOWER[1:-1]] = True
        self.colours = self._colours(face, mesh_grid)
        self._motion = HeadMotion(seed)

    def _colours(self, face: PhotoFace, mesh_grid: np.ndarray) -> MouthColours:
        img, shape = face.image, face.image.shape[:2]
        outer = polygon_mask(shape, np.concatenate([mesh_grid[OUTER_UPPER], mesh_grid[OUTER_LOWER][::-1]]))
        inner = polygon_mask(shape, np.concatenate([mesh_grid[INNER_UPPER], mesh_grid[INNER_LOWER][::-1]]))
        lips = img[outer & ~inner]
        skin = np.concatenate([img[max(int(y) - 2, 0):int(y) + 3, max(int(x) - 2, 0):int(x) + 3].reshape(-1, 3)
                               for x, y in mesh_grid[list(CHEEKS), :2]])
        teeth = img[inner] if inner.sum() >= 20 else None
        return MouthColours.from_photo(lips if len(lips) else skin, skin, teeth)

    # -- the mouth's rest ------------------------------------------------------------------------
    def rest_state(self) -> PhotoState:
        """The photo's own mouth, eyes open, the head at the photo's pose: renders the photo."""
        return PhotoState(open=self.rig.rest_open, round=PHOTO_ROUND)

    def mouth(self, opening: np.ndarray, rounding: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(opening, rounding) the head makes for viseme tracks and their rest share: the
        visemes' rest target replaced by the photo's own mouth, so that where the speech rests
        the mouth returns to the photo's."""
        rest = np.clip(np.asarray(rest, np.float64), 0, 1)
        r = self.rest_state()
        return (np.clip(opening + rest * (r.open - REST.open), 0, 1).astype(np.float32),
                np.clip(rounding + rest * (r.round - REST.round), 0, 1).astype(np.float32))

    def speech_mouth(self, speech: Speech, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(opening, rounding) of the head saying `speech` at `times` (s from its start)."""
        from services.subjects.visemes import mouth_track

        units = speech_units(speech)
        return self.mouth(*mouth_track(units, times), rest_share(units, times))

    # -- geometry ---------------------------------------------------------------------------
    def _motion_matrix(self, state: PhotoState) -> np.ndarray:
        """The head turn as a rotation in OpenCV camera axes."""
        r_head = rc.rotation_xyz(state.pitch, state.yaw, state.roll)
        return self.r_h2c @ r_head @ self.r_h2c.T

    def _place(self, xy: np.ndarray, z: np.ndarray, push: np.ndarray, weight: np.ndarray,
               turn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid points moved in the face plane → camera space → turned → projected (xy, depth)."""
        zz = z - push
        cam = np.stack([(xy[:, 0] - self._c) * zz / self.focal, (xy[:, 1] - self._c) * zz / self.focal, zz], -1)
        pivot = self.tvec
        turned = (cam - pivot) @ turn.T + pivot
        cam = weight[:, None] * turned + (1 - weight[:, None]) * cam
        proj = cam[:, :2] / cam[:, 2:3] * self.focal + self._c
        return proj, cam[:, 2]

    def head_to_camera(self, state: PhotoState) -> np.ndarray:
        """The head → OpenCV camera rotation [3,3] of a state."""
        return self._motion_matrix(state) @ self.r_h2c

    def c2w(self, state: PhotoState) -> np.ndarray:
        """Camera-to-head (OpenGL, metres: the dataset convention) for a state."""
        r = self.head_to_camera(state)
        return to_c2w(Rotation.from_matrix(r).as_rotvec()[None], self.tvec[None])[0]

    def c2w_rest(self) -> np.ndarray:
        """The photo's own camera-to-head pose."""
        return self.c2w(PhotoState())

    def landmarks478(self, state: PhotoState) -> np.ndarray:
        """[478,2] FaceMesh points of the rendered frame, grid coordinates."""
        moved, push = self.rig.move(self.mesh_grid, state.open, state.round, state.blink, self.mlower)
        return self._place(moved, self.mz, push, self.mweight, self._motion_matrix(state))[0]

    # -- frames -----------------------------------------------------------------------------
    def render(self, state: PhotoState) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(image uint8 [S,S,3], labels [S,S], torso RGBA, mouth interior bool [S,S], landmarks [478,2])."""
        s = self.size
        turn = self._motion_matrix(state)
        moved, push = self.rig.move(self.vxy, state.open, state.round, state.blink, self.vlower)
        xy, z = self._place(moved, self.vz, push, self.vweight, turn)
        mesh = self.landmarks478(state)
        tris, tri_inside = self.tris_open if self.rig.gap(state.open) > self.rig.gap0 + 0.5 else self.tris_rest
        frags = rasterize(xy, z, tris, s, s)
        attrs = interpolate(frags, tris, np.concatenate([self.vxy, self.valpha[:, None]], 1))
        alpha = attrs[..., 2:3] * frags.covered[..., None]
        tex = sample_bilinear(self.texture, attrs[..., 0], attrs[..., 1])
        image = self.background.astype(np.float32)
        width = float(np.linalg.norm(mesh[291] - mesh[61]))
        interior = paint_interior(image, mesh[INNER_UPPER], mesh[INNER_LOWER], width, self.colours)
        image = image * (1 - alpha) + tex * alpha
        out = np.clip(np.round(image), 0, 255).astype(np.uint8)
        # labels: the photo's label under each drawn pixel, the mouth interior is head
        ux = np.clip(np.round(attrs[..., 0]).astype(np.int64), 0, s - 1)
        uy = np.clip(np.round(attrs[..., 1]).astype(np.int64), 0, s - 1)
        drawn = alpha[..., 0] >= 0.5
        labels = np.where(drawn, self.photo_labels[uy, ux], LABEL_BG).astype(np.uint8)
        shown_inside = frags.covered & tri_inside[np.maximum(frags.tri, 0)]
        showing = (interior & ~drawn) | shown_inside
        labels[showing] = LABEL_HEAD
        labels[(labels == LABEL_BG) & drawn] = LABEL_TORSO
        torso = torso_layer(out, labels, mesh + 0.5)
        return out, labels, torso, showing, mesh

    # -- the oracle's interface ---------------------------------------------------------------
    def states(self, speech: Speech, fps: float = VIDEO_FPS, start_time: float = 0.0,
               n_frames: int | None = None) -> list[PhotoState]:
        times, opening, rounding, blinks = speech_tracks(speech, self._motion, fps, start_time, n_frames)
        opening, rounding = self.mouth(opening, rounding, rest_share(speech_units(speech), times - start_time))
        pose = self._motion.params(times)[:, :3] * MOTION_SHARE
        return [PhotoState(float(o), float(r), float(b), *map(float, p))
                for o, r, b, p in zip(opening, rounding, blinks, pose)]

    def frame(self, state: PhotoState, index: int = 0) -> OracleFrame:
        image, labels, torso, interior, mesh = self.render(state)
        landmarks = to_ibug68(mesh)
        meta = FrameMeta(index, self.c2w(state), state.blink, state.open, state.round, landmarks)
        return OracleFrame(meta, image, labels, torso, interior)
