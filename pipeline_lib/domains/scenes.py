"""Scenes: procedurally generated street scenes labelled with the 19 Cityscapes train ids.

The embedded stand-in for GTA5 -> Cityscapes (SPEC section 3, ``scenes_game`` and
``scenes_photo``). One layout sampler, :func:`sample_layout`, builds a street in a
simple pinhole-camera world (camera ``cam_h`` metres above a flat ground, looking down
a straight road towards a vanishing point on the horizon) and rasterises it with the
painter's algorithm into an instance map; labels, sub-object parts (windows, lane
markings, wheels, glass, skin, ...), per-pixel depth and surface coordinates all follow
from that map. Two renderers turn the same kind of layout into images:

- :func:`render_game`: saturated flat colours with per-object variation, crisp cel
  shading, dark outlines, regular synthetic textures (bricks, tiles, mowed stripes,
  cartoon clouds) and hard cast shadows, i.e. a video-game look;
- :func:`render_photo`: a desaturated realistic palette, fine-grained textures, soft
  shadows or overcast light, aerial haze, global colour temperature and exposure
  changes, vignetting, lens blur, sensor noise and a JPEG round trip.

Both styles draw their layouts from the same distribution (so the label statistics are
shared and only appearance differs: the domain gap) but from different random streams,
so the two domains never show the same street. Everything is seeded through
``np.random.default_rng``; no global random state is touched.

Labels: 0..18 are the Cityscapes train ids (:data:`CITYSCAPES_CLASSES`); 255
(:data:`IGNORE_LABEL`) marks the ego vehicle's bonnet, which about half the frames show
at the bottom, as in Cityscapes.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline_lib.errors import PipelineError

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
NUM_SCENE_CLASSES = len(CITYSCAPES_CLASSES)
IGNORE_LABEL = 255

# The official Cityscapes colours of the 19 train ids (for visualising masks).
CITYSCAPES_PALETTE = np.array(
    [
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
        (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
        (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
        (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ],
    dtype=np.uint8,
)

(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY,
 PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)

# Parts: sub-object materials, shared by both renderers. The first three are computed
# per pixel from surface coordinates; the others belong to whole drawn shapes.
(P_NONE, P_WINDOW, P_MARKING, P_CURB, P_GLASS, P_WHEEL, P_TAIL, P_HEAD, P_LAMP_RED,
 P_LAMP_AMBER, P_LAMP_GREEN, P_SKIN, P_HAIR, P_SHIRT, P_PANTS, P_TRUNK, P_SIGN_RIM,
 P_SIGN_FACE, P_LAMPHEAD, P_BUMPER) = range(20)
NUM_PARTS = 20

# How a shape's pixels map back to the world (for depth and surface coordinates).
PLANE_SKY, PLANE_GROUND, PLANE_SIDE, PLANE_FRONT = range(4)
# Surface orientation, for shading: facing the camera, facing +X / -X, facing up, unlit.
FACE_FRONT, FACE_POSX, FACE_NEGX, FACE_UP, FACE_FLAT = range(5)
_NORMALS = np.array([(0, 0, -1), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, 0, 0)], dtype=np.float32)

SKY_DEPTH = 5000.0
MAX_DEPTH = 2000.0  # depth of anything but the sky is clipped to this
Z_CLIP = 0.4  # near clipping distance (m) for world quads
BIG = 2000.0  # "infinitely" far sideways (m)
STYLES = ("game", "photo")
_STYLE_STREAM = {"game": 0x47414D45, "photo": 0x50484F54}


# --------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: ``cam_h`` m above flat ground, optical axis along +Z, no roll or pitch.

    World point (X right, Y up, Z forward) -> pixel ``(vx + f X / Z, hy - f (Y - cam_h) / Z)``.
    """

    height: int
    width: int
    focal: float
    horizon: float
    vanish_x: float
    cam_h: float

    def x(self, X: float, Z: float) -> float:
        return self.vanish_x + self.focal * X / Z

    def y(self, Y: float, Z: float) -> float:
        return self.horizon - self.focal * (Y - self.cam_h) / Z


@dataclass(frozen=True)
class Shape:
    """One drawn primitive (one instance id). ``obj`` groups the shapes of one object."""

    cls: int
    part: int
    obj: int
    face: int
    plane: int
    param: float  # X of a PLANE_SIDE, Z of a PLANE_FRONT
    depth: float
    kind: str  # "polygon" | "line" (points: (x, y) pairs) | "ellipse" | "ring" (points: box) | "fill" (the sky)
    points: tuple


@dataclass(frozen=True)
class Solid:
    """A world-space box standing on (or floating above) the ground; casts shadows."""

    x0: float
    x1: float
    z0: float
    z1: float
    y0: float
    y1: float
    round: bool = False  # an upright cylinder (tree crown) rather than a box


@dataclass(frozen=True)
class Layout:
    """A sampled street: labels plus everything the renderers need to paint it.

    labels: uint8 (H, W), train ids 0..18 or 255. instances: int32 (H, W), index into
    ``shapes`` (0 is the sky). parts: uint8 (H, W), ``P_*``. depth: float32 (H, W),
    metres along the optical axis (``SKY_DEPTH`` for sky). surf_u / surf_v: float32 (H, W)
    surface coordinates in metres (ground: X, Z; side walls: Z, Y; frontal: X, Y).
    inst_*: per-instance attributes of ``shapes`` as arrays.
    """

    labels: np.ndarray
    instances: np.ndarray
    parts: np.ndarray
    depth: np.ndarray
    surf_u: np.ndarray
    surf_v: np.ndarray
    shapes: tuple[Shape, ...]
    solids: tuple[Solid, ...]
    camera: Camera
    n_objects: int
    inst_class: np.ndarray
    inst_part: np.ndarray
    inst_object: np.ndarray
    inst_face: np.ndarray


class _Canvas:
    """Rasterises shapes into an instance-id image, painter's order (later = in front)."""

    def __init__(self, cam: Camera):
        self.cam = cam
        self.img = Image.new("I", (cam.width, cam.height), 0)
        self.draw = ImageDraw.Draw(self.img)
        self.shapes: list[Shape] = [Shape(SKY, P_NONE, 0, FACE_FLAT, PLANE_SKY, 0.0, SKY_DEPTH, "fill", ())]
        self.solids: list[Solid] = []
        self.windows: dict[int, tuple] = {}  # instance id -> window grid parameters
        self.n_obj = 1

    def new_obj(self) -> int:
        self.n_obj += 1
        return self.n_obj - 1

    def _add(self, cls, part, obj, face, plane, param, depth, kind, points) -> int:
        self.shapes.append(Shape(cls, part, obj, face, plane, float(param), float(depth), kind, points))
        return len(self.shapes) - 1

    def polygon(self, pts, cls, obj, *, part=P_NONE, face=FACE_FRONT, plane=PLANE_FRONT, param=0.0, depth=0.0):
        pts = tuple(pts)
        iid = self._add(cls, part, obj, face, plane, param, depth, "polygon", pts)
        self.draw.polygon(pts, fill=iid)
        return iid

    def ellipse(self, box, cls, obj, *, part=P_NONE, face=FACE_FRONT, param=0.0, depth=0.0, width=0):
        x0, y0, x1, y1 = box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        kind = "ring" if width else "ellipse"
        iid = self._add(cls, part, obj, face, PLANE_FRONT, param, depth, kind, box)
        if width:
            self.draw.ellipse(box, outline=iid, width=int(width))
        else:
            self.draw.ellipse(box, fill=iid)
        return iid

    def line(self, pts, width, cls, obj, *, part=P_NONE, param=0.0, depth=0.0):
        pts = tuple(pts)
        iid = self._add(cls, part, obj, FACE_FRONT, PLANE_FRONT, param, depth, "line", pts)
        self.draw.line(pts, fill=iid, width=max(1, round(width)))
        return iid

    # ---- world-space helpers -----------------------------------------------------------

    def front_quad(self, Z, xa, xb, ya, yb, cls, obj, *, part=P_NONE, face=FACE_FRONT):
        c = self.cam
        x0, x1 = c.x(xa, Z), c.x(xb, Z)
        y0, y1 = c.y(ya, Z), c.y(yb, Z)
        return self.polygon(((x0, y1), (x1, y1), (x1, y0), (x0, y0)), cls, obj, part=part, face=face,
                            plane=PLANE_FRONT, param=Z, depth=Z)

    def front_ellipse(self, Z, xc, yc, rx, ry, cls, obj, *, part=P_NONE, width_m=0.0):
        c = self.cam
        box = (c.x(xc - rx, Z), c.y(yc + ry, Z), c.x(xc + rx, Z), c.y(yc - ry, Z))
        width = max(1, round(c.focal * width_m / Z)) if width_m else 0
        return self.ellipse(box, cls, obj, part=part, param=Z, depth=Z, width=width)

    def front_line(self, Z, pts_world, width_m, cls, obj, *, part=P_NONE):
        c = self.cam
        pts = [(c.x(X, Z), c.y(Y, Z)) for X, Y in pts_world]
        return self.line(pts, c.focal * width_m / Z, cls, obj, part=part, param=Z, depth=Z)

    def side_quad(self, X, za, zb, ya, yb, cls, obj, *, part=P_NONE):
        za, zb = max(za, Z_CLIP), max(zb, Z_CLIP)
        if zb <= za:
            return None
        c = self.cam
        pts = ((c.x(X, za), c.y(ya, za)), (c.x(X, zb), c.y(ya, zb)),
               (c.x(X, zb), c.y(yb, zb)), (c.x(X, za), c.y(yb, za)))
        face = FACE_POSX if X < 0 else FACE_NEGX
        return self.polygon(pts, cls, obj, part=part, face=face, plane=PLANE_SIDE, param=X, depth=za)

    def top_quad(self, Y, xa, xb, za, zb, cls, obj, *, part=P_NONE):
        za, zb = max(za, Z_CLIP), max(zb, Z_CLIP)
        c = self.cam
        pts = ((c.x(xa, za), c.y(Y, za)), (c.x(xb, za), c.y(Y, za)),
               (c.x(xb, zb), c.y(Y, zb)), (c.x(xa, zb), c.y(Y, zb)))
        return self.polygon(pts, cls, obj, part=part, face=FACE_UP, plane=PLANE_FRONT, param=za, depth=za)

    def ground_strip(self, xa, xb, za, zb, cls, obj) -> int:
        """Ground region xa <= X <= xb, za <= Z <= zb, clipped to the image rows."""
        c = self.cam
        yb_max = c.height + 2.0
        ya = c.horizon + c.focal * c.cam_h / max(za, Z_CLIP)
        yf = c.horizon + (c.focal * c.cam_h / zb if math.isfinite(zb) else 0.0)
        ya = min(ya, yb_max)
        lim_lo, lim_hi = -4.0 * c.width, 5.0 * c.width

        def xr(X, y):
            return min(max(c.vanish_x + X / c.cam_h * (y - c.horizon), lim_lo), lim_hi)

        pts = ((xr(xa, ya), ya), (xr(xb, ya), ya), (xr(xb, yf), yf), (xr(xa, yf), yf))
        return self.polygon(pts, cls, obj, face=FACE_UP, plane=PLANE_GROUND, depth=za)


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy + 0.5, xx + 0.5


# ---- object drawers (world coordinates; all take the canvas and a generator) ------------


def _draw_person(cv: _Canvas, rng, X: float, Z: float, cls: int = PERSON, obj: int | None = None) -> None:
    obj = cv.new_obj() if obj is None else obj
    hp = rng.uniform(1.55, 1.95)
    s = hp / 1.75
    stride = rng.uniform(0.0, 0.22) * s
    leg_top, hip, sh = 0.85 * s, 0.17 * s, 0.23 * s
    c = cv.cam
    # legs (trousers)
    for sgn in (-1.0, 1.0):
        foot = X + sgn * (0.09 * s + stride)
        pts = ((c.x(X + sgn * 0.01, Z), c.y(leg_top, Z)), (c.x(X + sgn * hip, Z), c.y(leg_top, Z)),
               (c.x(foot + sgn * 0.07 * s, Z), c.y(0.0, Z)), (c.x(foot - sgn * 0.05 * s, Z), c.y(0.0, Z)))
        cv.polygon(pts, cls, obj, part=P_PANTS, param=Z, depth=Z)
    # torso and arms (shirt)
    top = 1.45 * s
    pts = ((c.x(X - sh, Z), c.y(top, Z)), (c.x(X + sh, Z), c.y(top, Z)),
           (c.x(X + hip + 0.02, Z), c.y(leg_top - 0.05, Z)), (c.x(X - hip - 0.02, Z), c.y(leg_top - 0.05, Z)))
    cv.polygon(pts, cls, obj, part=P_SHIRT, param=Z, depth=Z)
    swing = rng.uniform(-0.12, 0.12)
    for sgn in (-1.0, 1.0):
        pts = ((c.x(X + sgn * sh, Z), c.y(top, Z)), (c.x(X + sgn * (sh + 0.09 * s), Z), c.y(top - 0.05, Z)),
               (c.x(X + sgn * (sh + 0.06 * s) + sgn * swing, Z), c.y(0.8 * s, Z)),
               (c.x(X + sgn * (sh - 0.02) + sgn * swing, Z), c.y(0.82 * s, Z)))
        cv.polygon(pts, cls, obj, part=P_SHIRT, param=Z, depth=Z)
    # head and hair
    hr = 0.11 * s
    cv.front_ellipse(Z, X, 1.61 * s, hr * 0.9, hr * 1.15, cls, obj, part=P_SKIN)
    cv.front_ellipse(Z, X, 1.66 * s, hr * 0.95, hr * 0.75, cls, obj, part=P_HAIR)
    cv.solids.append(Solid(X - sh, X + sh, Z - 0.15, Z + 0.15, 0.0, hp))


def _vehicle_dims(rng, kind: str) -> tuple[float, float, float]:
    """(width, length, height) in metres."""
    if kind == "car":
        return rng.uniform(1.65, 1.9), rng.uniform(3.8, 4.8), rng.uniform(1.35, 1.6)
    if kind == "van":
        return rng.uniform(1.85, 2.05), rng.uniform(4.6, 5.4), rng.uniform(1.85, 2.3)
    if kind == "truck":
        return rng.uniform(2.3, 2.55), rng.uniform(7.0, 10.0), rng.uniform(3.0, 3.8)
    if kind == "bus":
        return 2.55, rng.uniform(11.0, 13.0), rng.uniform(2.9, 3.2)
    return 2.65, rng.uniform(22.0, 30.0), rng.uniform(3.3, 3.6)


def _draw_vehicle(cv: _Canvas, rng, kind: str, xc: float, z0: float, toward: bool, dims: tuple) -> None:
    """A box-shaped vehicle seen from behind (or from the front when ``toward``)."""
    obj = cv.new_obj()
    cls = {"car": CAR, "van": CAR, "truck": TRUCK, "bus": BUS, "train": TRAIN}[kind]
    w, L, h = dims
    xl, xr = xc - w / 2, xc + w / 2
    z1 = z0 + L
    y_lo = 0.25 if kind in ("car", "van") else 0.35
    wheel_r = 0.32 if kind in ("car", "van") else 0.5
    side_x = xr if xr < 0 else (xl if xl > 0 else None)
    c = cv.cam
    cv.solids.append(Solid(xl, xr, z0, z1, 0.0, h))

    def side_wheels():
        for zw in (z0 + 0.17 * L, z1 - 0.17 * L):
            box = (c.x(side_x, zw - wheel_r), c.y(2 * wheel_r, zw), c.x(side_x, zw + wheel_r), c.y(0.0, zw))
            cv.ellipse(box, cls, obj, part=P_WHEEL, param=zw, depth=zw)

    def near_wheels(zn):
        for xa in (xl + 0.08, xr - 0.38):
            cv.front_quad(zn + 0.4, xa, xa + 0.3, 0.0, 2 * wheel_r * 0.8, cls, obj, part=P_WHEEL)

    light_part = P_HEAD if toward else P_TAIL
    if kind == "car":
        hb = h * rng.uniform(0.52, 0.6)
        if toward:
            zc0, zc1 = z0 + 0.33 * L, z0 + 0.8 * L
        else:
            zc0, zc1 = z0 + 0.22 * L, z0 + 0.68 * L
        inset = 0.12
        if side_x is not None:
            cv.side_quad(side_x, z0, z1, y_lo, hb, cls, obj)
            sx = side_x - inset if side_x < 0 else side_x + inset
            cv.side_quad(sx, zc0, zc1, hb, h, cls, obj)
            cv.side_quad(sx, zc0 + 0.2, zc1 - 0.12, hb + 0.07, h - 0.07, cls, obj, part=P_GLASS)
            side_wheels()
        cv.front_quad(zc0, xl + inset, xr - inset, hb, h, cls, obj)
        cv.front_quad(zc0, xl + inset + 0.1, xr - inset - 0.1, hb + 0.06, h - 0.06, cls, obj, part=P_GLASS)
        cv.top_quad(hb, xl, xr, z0, zc0, cls, obj)
        near_wheels(z0)
        cv.front_quad(z0, xl, xr, y_lo, hb, cls, obj)
        cv.front_quad(z0, xl, xr, y_lo, y_lo + 0.15, cls, obj, part=P_BUMPER)
        ly = hb - 0.28
        cv.front_quad(z0, xl + 0.05, xl + 0.38, ly, ly + 0.16, cls, obj, part=light_part)
        cv.front_quad(z0, xr - 0.38, xr - 0.05, ly, ly + 0.16, cls, obj, part=light_part)
        return
    if kind == "truck" and toward:
        zb0 = z0 + 2.4  # cargo box behind the cab
        cv.front_quad(zb0, xl, xr, 0.9, h, cls, obj)
        if side_x is not None:
            cv.side_quad(side_x, zb0, z1, 0.9, h, cls, obj)
            cv.side_quad(side_x, z0, zb0, y_lo, 2.7, cls, obj)
            side_wheels()
        near_wheels(z0)
        cv.front_quad(z0, xl, xr, y_lo, 2.7, cls, obj)
        cv.front_quad(z0, xl + 0.1, xr - 0.1, 1.6, 2.55, cls, obj, part=P_GLASS)
        cv.front_quad(z0, xl, xr, y_lo, y_lo + 0.25, cls, obj, part=P_BUMPER)
        for xa in (xl + 0.08, xr - 0.38):
            cv.front_quad(z0, xa, xa + 0.3, 0.7, 0.9, cls, obj, part=light_part)
        return
    # van / truck (rear) / bus / train: one box; glass bands on the side and the near face
    if side_x is not None:
        cv.side_quad(side_x, z0, z1, y_lo, h, cls, obj)
        if kind in ("bus", "train", "van"):
            g0, g1 = (1.15, h - 0.45) if kind != "van" else (h * 0.58, h - 0.12)
            cv.side_quad(side_x, z0 + 0.4, z1 - 0.4, g0, g1, cls, obj, part=P_GLASS)
        side_wheels()
    near_wheels(z0)
    cv.front_quad(z0, xl, xr, y_lo, h, cls, obj)
    if kind in ("bus", "train", "van") or (kind == "truck" and rng.random() < 0.3):
        g0 = h * 0.58 if kind == "van" else (1.4 if toward or kind == "train" else 1.8)
        cv.front_quad(z0, xl + 0.12, xr - 0.12, g0, h - 0.15, cls, obj, part=P_GLASS)
    cv.front_quad(z0, xl, xr, y_lo, y_lo + 0.22, cls, obj, part=P_BUMPER)
    for xa in (xl + 0.06, xr - 0.36):
        cv.front_quad(z0, xa, xa + 0.3, 0.6, 0.82, cls, obj, part=light_part)


def _draw_two_wheeler(cv: _Canvas, rng, kind: str, X: float, Z: float, rider: bool) -> None:
    """A bicycle or motorcycle in side view (optionally ridden), in the plane Z."""
    obj = cv.new_obj()
    d = 1.0 if rng.random() < 0.5 else -1.0  # heading
    cls = BICYCLE if kind == "bicycle" else MOTORCYCLE
    r = 0.34 if kind == "bicycle" else 0.32
    half = 0.55 if kind == "bicycle" else 0.7
    xb, xf = X - d * half, X + d * half
    if kind == "bicycle":
        cv.front_ellipse(Z, xb, r, r, r, cls, obj, part=P_WHEEL, width_m=0.06)
        cv.front_ellipse(Z, xf, r, r, r, cls, obj, part=P_WHEEL, width_m=0.06)
        seat = (X - d * 0.2, 0.9)
        bar = (xf - d * 0.1, 1.0)
        crank = (X, r)
        cv.front_line(Z, [(xb, r), seat, crank, (xb, r)], 0.05, cls, obj)
        cv.front_line(Z, [seat, bar, (xf, r)], 0.05, cls, obj)
        cv.front_line(Z, [crank, (bar[0] - d * 0.05, 0.85)], 0.05, cls, obj)
        seat_y = 0.92
    else:
        cv.front_ellipse(Z, xb, r, r, r, cls, obj, part=P_WHEEL)
        cv.front_ellipse(Z, xf, r, r, r, cls, obj, part=P_WHEEL)
        c = cv.cam
        body = [(xb + d * 0.1, 0.45), (xf - d * 0.15, 0.45), (xf - d * 0.05, 0.75), (X + d * 0.25, 0.95),
                (X - d * 0.35, 0.85), (xb - d * 0.1, 0.7)]
        cv.polygon([(c.x(a, Z), c.y(b, Z)) for a, b in body], cls, obj, param=Z, depth=Z)
        cv.front_line(Z, [(xf - d * 0.05, 0.75), (xf - d * 0.15, 1.1)], 0.06, cls, obj)
        cv.front_ellipse(Z, xf - d * 0.02, 0.85, 0.07, 0.07, cls, obj, part=P_HEAD)
        seat_y = 0.85
    cv.solids.append(Solid(X - half, X + half, Z - 0.2, Z + 0.2, 0.0, 1.1))
    if not rider:
        return
    robj = cv.new_obj()
    c = cv.cam
    s = rng.uniform(0.92, 1.08)
    hipx = X - d * 0.2
    lean = d * (0.25 if kind == "bicycle" else 0.12)
    # leg to the pedal / footrest, torso leaning forward, arm to the handlebar, head
    cv.front_line(Z, [(hipx, seat_y + 0.05), (X + d * 0.12, 0.55), (X + d * 0.02, 0.25 if kind == "bicycle" else 0.45)],
                  0.13 * s, RIDER, robj, part=P_PANTS)
    top = seat_y + 0.62 * s
    pts = [(hipx - d * 0.12, seat_y), (hipx + d * 0.12, seat_y),
           (hipx + lean + d * 0.12, top), (hipx + lean - d * 0.12, top)]
    cv.polygon([(c.x(a, Z), c.y(b, Z)) for a, b in pts], RIDER, robj, part=P_SHIRT, param=Z, depth=Z)
    cv.front_line(Z, [(hipx + lean, top - 0.05), (xf - d * 0.15, 1.0)], 0.08 * s, RIDER, robj, part=P_SHIRT)
    helmet = P_HAIR if kind == "bicycle" and rng.random() < 0.5 else P_SHIRT
    cv.front_ellipse(Z, hipx + lean + d * 0.03, top + 0.14 * s, 0.11 * s, 0.13 * s, RIDER, robj,
                     part=P_SKIN if helmet == P_HAIR else P_SHIRT)
    cv.front_ellipse(Z, hipx + lean + d * 0.03, top + 0.19 * s, 0.12 * s, 0.08 * s, RIDER, robj, part=helmet)
    cv.solids.append(Solid(X - 0.3, X + 0.3, Z - 0.15, Z + 0.15, seat_y, top + 0.3))


def _draw_streetlamp(cv: _Canvas, rng, X: float, Z: float) -> None:
    obj = cv.new_obj()
    hp = rng.uniform(6.0, 9.0)
    d = -1.0 if X > 0 else 1.0  # arm points over the road
    arm = rng.uniform(1.0, 2.2)
    cv.front_quad(Z, X - 0.09, X + 0.09, 0.0, hp, POLE, obj)
    cv.front_quad(Z, min(X, X + d * arm), max(X, X + d * arm), hp - 0.08, hp + 0.04, POLE, obj)
    end = X + d * arm
    cv.front_quad(Z, end - 0.3, end + 0.3, hp - 0.2, hp, POLE, obj, part=P_LAMPHEAD)
    cv.solids.append(Solid(X - 0.09, X + 0.09, Z - 0.09, Z + 0.09, 0.0, hp))


def _draw_sign(cv: _Canvas, rng, X: float, Z: float) -> None:
    obj = cv.new_obj()
    hs = rng.uniform(2.0, 2.8)
    cv.front_quad(Z, X - 0.05, X + 0.05, 0.0, hs, POLE, obj)
    kind = rng.choice(4)
    rad = rng.uniform(0.28, 0.4)
    cy = hs + rad
    c = cv.cam
    if kind == 0:  # round
        cv.front_ellipse(Z, X, cy, rad, rad, SIGN, obj, part=P_SIGN_RIM)
        cv.front_ellipse(Z, X, cy, rad * 0.72, rad * 0.72, SIGN, obj, part=P_SIGN_FACE)
    elif kind == 1:  # triangle
        for scale, part in ((1.0, P_SIGN_RIM), (0.62, P_SIGN_FACE)):
            rr = rad * scale * 1.2
            pts = [(X, cy - rr * 0.5), (X + rr * 0.87, cy + rr), (X - rr * 0.87, cy + rr)] if rng.random() < 0.2 else \
                [(X, cy + rr), (X + rr * 0.87, cy - rr * 0.5), (X - rr * 0.87, cy - rr * 0.5)]
            cv.polygon([(c.x(a, Z), c.y(b, Z)) for a, b in pts], SIGN, obj, part=part, param=Z, depth=Z)
    elif kind == 2:  # rectangle
        wr, hr = rad * rng.uniform(0.8, 1.5), rad * 0.9
        cv.front_quad(Z, X - wr, X + wr, cy - hr, cy + hr, SIGN, obj, part=P_SIGN_RIM)
        cv.front_quad(Z, X - wr * 0.8, X + wr * 0.8, cy - hr * 0.75, cy + hr * 0.75, SIGN, obj, part=P_SIGN_FACE)
    else:  # diamond
        for scale, part in ((1.0, P_SIGN_RIM), (0.65, P_SIGN_FACE)):
            rr = rad * scale
            pts = [(X, cy + rr), (X + rr, cy), (X, cy - rr), (X - rr, cy)]
            cv.polygon([(c.x(a, Z), c.y(b, Z)) for a, b in pts], SIGN, obj, part=part, param=Z, depth=Z)
    cv.solids.append(Solid(X - 0.05, X + 0.05, Z - 0.05, Z + 0.05, 0.0, hs + 2 * rad))


def _draw_traffic_light(cv: _Canvas, rng, X: float, Z: float, overhead: bool) -> None:
    obj = cv.new_obj()
    if overhead:
        hp = rng.uniform(5.5, 6.5)
        d = -1.0 if X > 0 else 1.0
        arm = rng.uniform(3.0, 6.0)
        cv.front_quad(Z, X - 0.12, X + 0.12, 0.0, hp + 0.2, POLE, obj)
        cv.front_quad(Z, min(X, X + d * arm), max(X, X + d * arm), hp, hp + 0.15, POLE, obj)
        bx, by = X + d * arm * rng.uniform(0.6, 0.95), hp - 1.0
    else:
        hp = rng.uniform(2.6, 3.4)
        cv.front_quad(Z, X - 0.07, X + 0.07, 0.0, hp, POLE, obj)
        bx, by = X, hp
    cv.front_quad(Z, bx - 0.22, bx + 0.22, by, by + 1.05, LIGHT, obj)
    for i, part in enumerate((P_LAMP_GREEN, P_LAMP_AMBER, P_LAMP_RED)):
        cv.front_ellipse(Z, bx, by + 0.2 + 0.32 * i, 0.12, 0.12, LIGHT, obj, part=part)
    cv.solids.append(Solid(X - 0.1, X + 0.1, Z - 0.1, Z + 0.1, 0.0, hp))


def _draw_tree(cv: _Canvas, rng, X: float, Z: float, size: float = 1.0) -> None:
    obj = cv.new_obj()
    ht = rng.uniform(1.8, 3.2) * size
    cv.front_quad(Z, X - 0.14 * size, X + 0.14 * size, 0.0, ht + 0.8 * size, VEGETATION, obj, part=P_TRUNK)
    n = rng.integers(3, 7)
    rad = rng.uniform(1.4, 2.4, size=n) * size
    cx = X + rng.normal(0.0, 0.7 * size, size=n)
    cy = ht + rad * rng.uniform(0.6, 1.3, size=n)
    top = 0.0
    for a, b, r in zip(cx, cy, rad):
        cv.front_ellipse(Z, a, b, r * rng.uniform(0.85, 1.15), r, VEGETATION, obj)
        top = max(top, b + r)
    cv.solids.append(Solid(X - 0.15, X + 0.15, Z - 0.15, Z + 0.15, 0.0, ht))
    cv.solids.append(Solid(float(cx.min() - rad.max() * 0.7), float(cx.max() + rad.max() * 0.7),
                           Z - rad.max() * 0.7, Z + rad.max() * 0.7, ht + 0.3, top - 0.3, True))


# ---- the sampler ----------------------------------------------------------------------


def _visibility_order(foot: np.ndarray) -> list[int]:
    """Back-to-front drawing order of ground footprints (x0, x1, z0, z1), all at z0 > 0.

    Plain painter's order by nearest Z fails beside long objects (a car in an inner lane
    next to a bus in the outer one), so: two footprints that share a line of sight from the
    camera are ordered by where that ray enters them, and the order is a topological sort
    of that relation (ties and cycles fall back to farthest-first).
    """
    n = len(foot)
    if n == 0:
        return []
    x0, x1, z0, z1 = foot.T
    z0 = np.maximum(z0, 0.05)
    tmin = np.where(x0 >= 0, x0 / z1, x0 / z0)  # angular interval X / Z
    tmax = np.where(x1 >= 0, x1 / z0, x1 / z1)
    lo = np.maximum(tmin[:, None], tmin[None, :])
    hi = np.minimum(tmax[:, None], tmax[None, :])
    overlap = lo < hi
    t = (lo + hi) / 2  # a shared ray X = t Z

    def entry(xa, xb, za):  # Z where the ray enters each footprint (rows) for each ray (t)
        with np.errstate(divide="ignore", invalid="ignore"):
            enter = np.where(t > 1e-9, xa[:, None] / t, np.where(t < -1e-9, xb[:, None] / t, -np.inf))
        return np.maximum(za[:, None], enter)

    e = entry(x0, x1, z0)
    behind = overlap & (e > e.T + 1e-6)  # behind[i, j]: i is farther than j along their shared ray
    np.fill_diagonal(behind, False)
    waiting = behind.sum(0)  # for each j: how many not-yet-drawn footprints are behind it
    remaining = np.ones(n, bool)
    order = []
    far = -z0
    for _ in range(n):
        ready = np.flatnonzero(remaining & (waiting == 0))
        pool = ready if len(ready) else np.flatnonzero(remaining)
        i = int(pool[np.argmin(far[pool])])
        order.append(i)
        remaining[i] = False
        waiting -= behind[i]
    return order


def _window_params(rng, top: float) -> tuple:
    sx = rng.uniform(2.2, 4.0)
    sy = rng.uniform(2.8, 3.6)
    fx = rng.uniform(0.35, 0.65)
    fy = rng.uniform(0.35, 0.6)
    shop = rng.random() < 0.45
    return (sx, sy, fx, fy, rng.uniform(0.0, sx), 3.2 if shop else rng.uniform(0.0, 2.0), top - 0.8, shop)


def sample_layout(rng: np.random.Generator, height: int, width: int) -> Layout:
    """A random street scene: geometry, labels, parts, depth and surface coordinates."""
    H, W = int(height), int(width)
    cam = Camera(H, W, focal=W * rng.uniform(0.5, 0.6), horizon=H * rng.uniform(0.36, 0.47),
                 vanish_x=W * rng.uniform(0.42, 0.58), cam_h=rng.uniform(1.3, 1.7))
    cv = _Canvas(cam)
    f = cam.focal

    # ---- road cross-section (camera in the middle of the first right-hand lane)
    lane_w = rng.uniform(3.0, 3.6)
    n_right = 1 + int(rng.random() < 0.4)
    n_left = 1 + int(rng.random() < 0.35)
    park = rng.random(2) < np.array([0.4, 0.5])  # parking strip left / right
    rr = lane_w * (n_right - 0.5) + 2.3 * park[1]
    rl = lane_w * (n_left + 0.5) + 2.3 * park[0]
    edge = (-rl, rr)
    sw = rng.uniform(2.0, 5.0, size=2)
    setback = np.where(rng.random(2) < 0.5, 0.0, rng.uniform(0.8, 7.0, size=2))
    setback_cls = [TERRAIN if rng.random() < 0.5 else SIDEWALK for _ in range(2)]
    outer = (-(rl + sw[0]), rr + sw[1])  # sidewalk outer edges
    facade = (outer[0] - setback[0], outer[1] + setback[1])
    cross = rng.random() < 0.35
    zc, wc = (rng.uniform(16.0, 55.0), rng.uniform(9.0, 16.0)) if cross else (np.inf, 0.0)
    z_end = rng.uniform(60.0, 150.0) if rng.random() < 0.3 else np.inf
    if z_end < zc + wc + 10:
        cross, zc, wc = False, np.inf, 0.0

    # ---- plan the blocks along each side
    buildings = []  # (side, z0, z1, height, x_facade)
    parks = []  # (side, z0, z1)
    walls = []  # (side, z0, z1, cls, height)
    objects: list[tuple[tuple, Callable[[], None]]] = []
    for si, s in enumerate((-1.0, 1.0)):
        z = rng.uniform(-6.0, 4.0)
        z_stop = min(z_end, rng.uniform(130.0, 260.0))
        while z < z_stop:
            if cross and z + 3.0 > zc - 3.0 and z < zc + wc + 3.0:
                z = zc + wc + 3.0
                continue
            L = rng.uniform(8.0, 32.0)
            if cross and z < zc - 3.0 < z + L:
                L = zc - 3.0 - z
            r = rng.random()
            if r < 0.74:
                hb = float(np.clip(rng.lognormal(np.log(14.0), 0.45), 4.0, 45.0))
                xf = facade[si] + s * rng.uniform(0.0, 1.5) * (rng.random() < 0.4)
                buildings.append((s, z, z + L, hb, xf))
            elif r < 0.88:
                parks.append((s, z, z + L))
            z += L
        # walls, fences and hedges on the outer edge of the sidewalk (front gardens)
        if setback[si] > 0.5 or rng.random() < 0.25:
            for _ in range(rng.integers(1, 4)):
                z0 = rng.uniform(2.0, 60.0)
                z1 = z0 + rng.uniform(4.0, 25.0)
                if cross and z1 > zc - 3 and z0 < zc + wc + 3:
                    continue
                kind = rng.choice(3, p=[0.33, 0.37, 0.3])
                cls = (WALL, FENCE, VEGETATION)[kind]
                hw = rng.uniform(0.8, 2.4) if cls != VEGETATION else rng.uniform(0.7, 1.6)
                walls.append((s, z0, z1, cls, hw))

    # ---- objects on the sidewalks and the road
    def add(foot, fn, *args):  # foot: ground footprint (x0, x1, z0, z1) for the visibility order
        objects.append((foot, functools.partial(fn, cv, rng, *args)))

    def at(X, Z, r=0.3):
        return (X - r, X + r, Z - r, Z + r)

    def free_z(z):  # not inside the cross street
        return not (cross and zc - 2.0 < z < zc + wc + 2.0)

    for si, s in enumerate((-1.0, 1.0)):
        curb = edge[si]
        # street lamps
        if rng.random() < 0.8:
            step = rng.uniform(18.0, 32.0)
            for z in np.arange(rng.uniform(3.0, step), 110.0, step):
                if free_z(z):
                    add(at(curb + s * 0.6, z, 0.15), _draw_streetlamp, curb + s * 0.6, z)
        for _ in range(rng.poisson(1.3)):
            z = rng.uniform(5.0, 45.0)
            if free_z(z):
                X = curb + s * rng.uniform(0.4, 1.0)
                add(at(X, z, 0.15), _draw_sign, X, z)
        # trees along the sidewalk
        if rng.random() < 0.5:
            step = rng.uniform(7.0, 13.0)
            xt = outer[si] - s * rng.uniform(0.8, 1.3)
            size = rng.uniform(0.8, 1.4)
            for z in np.arange(rng.uniform(2.0, step), 100.0, step):
                if free_z(z):
                    add(at(xt, z, 0.5), _draw_tree, xt, z, size * rng.uniform(0.85, 1.15))
        # persons
        for _ in range(rng.poisson(2.4)):
            z = rng.uniform(3.5, 45.0)
            X = curb + s * rng.uniform(0.5, sw[si] - 0.3)
            add(at(X, z), _draw_person, X, z)
        # parked two-wheelers
        if rng.random() < 0.2:
            z = rng.uniform(4.0, 30.0)
            X = outer[si] - s * 0.6
            add((X - 0.9, X + 0.9, z - 0.3, z + 0.3), _draw_two_wheeler,
                "bicycle" if rng.random() < 0.65 else "motorcycle", X, z, False)
    # trees in parks (behind the facade line; drawn with the buildings)
    park_trees = []
    for s, z0, z1 in parks:
        si = int(s > 0)
        for z in np.arange(z0 + rng.uniform(1.0, 6.0), z1, rng.uniform(5.0, 10.0)):
            park_trees.append((z, facade[si] + s * rng.uniform(1.0, 8.0), rng.uniform(1.0, 1.8)))
    # traffic lights at the crossing
    if cross or rng.random() < 0.3:
        zl = zc - rng.uniform(1.0, 3.0) if cross else rng.uniform(8.0, 40.0)
        for si, s in enumerate((-1.0, 1.0)):
            if rng.random() < 0.75:
                X, z = edge[si] + s * 0.7, zl + rng.uniform(-0.5, 0.5)
                add(at(X, z, 0.2), _draw_traffic_light, X, z, rng.random() < 0.4)
        if cross and rng.random() < 0.6:
            s = rng.choice([-1.0, 1.0])
            X, z = edge[int(s > 0)] + s * 0.7, zc + wc + 1.0
            add(at(X, z, 0.2), _draw_traffic_light, X, z, False)
    # vehicles in lanes (no overlaps in a lane)
    lanes = [(-lane_w * (k + 1), True) for k in range(n_left)] + [(lane_w * k, False) for k in range(n_right)]
    if park[0]:
        lanes.append((-rl + 1.15, False))
    if park[1]:
        lanes.append((rr - 1.15, False))
    for li, (xlane, toward) in enumerate(lanes):
        parked = li >= n_left + n_right
        n = rng.poisson(4.5 if parked else 2.2)
        taken: list[tuple[float, float]] = []
        for _ in range(n):
            z_min = 3.0 if xlane != 0 else 5.5
            z0 = z_min + (70.0 if parked else 100.0) * rng.random() ** 1.4
            r = rng.random()
            kind = "car"
            if not parked:
                if r < 0.1:
                    kind = "truck"
                elif r < 0.17:
                    kind = "bus"
                elif r < 0.2 and xlane != 0:
                    kind = "train"
                elif r < 0.32:
                    kind = "van"
            elif r < 0.15:
                kind = "van"
            dims = _vehicle_dims(rng, kind)
            length = dims[1]
            if any(a < z0 + length and z0 < b for a, b in taken) or not free_z(z0) or not free_z(z0 + length):
                continue
            taken.append((z0 - 1.0, z0 + length + 1.0))
            xc = xlane + rng.normal(0.0, 0.15)
            add((xc - dims[0] / 2, xc + dims[0] / 2, z0, z0 + length), _draw_vehicle, kind, xc, z0, toward, dims)
    # riders on the road near the curb
    for _ in range(rng.poisson(0.5)):
        z = rng.uniform(4.0, 35.0)
        s = rng.choice([-1.0, 1.0])
        X = edge[int(s > 0)] - s * rng.uniform(0.8, 1.6)
        add((X - 0.9, X + 0.9, z - 0.3, z + 0.3), _draw_two_wheeler,
            "bicycle" if rng.random() < 0.6 else "motorcycle", X, z, True)
    # persons crossing at the crosswalk
    if cross:
        for _ in range(rng.poisson(0.8)):
            z = zc - rng.uniform(1.0, 4.0)
            X = rng.uniform(-rl + 0.5, rr - 0.5)
            add(at(X, z), _draw_person, X, z)

    # ---- draw: ground
    for si, s in enumerate((-1.0, 1.0)):
        lo, hi = sorted((s * BIG, outer[si]))
        cv.ground_strip(lo, hi, Z_CLIP, np.inf, setback_cls[si], cv.new_obj())
    park_obj = cv.new_obj()
    for s, z0, z1 in parks:
        si = int(s > 0)
        lo, hi = sorted((s * BIG, outer[si]))
        cv.ground_strip(lo, hi, z0, z1, TERRAIN, park_obj)
    sw_obj = cv.new_obj()
    for si in range(2):
        lo, hi = sorted((outer[si], edge[si]))
        cv.ground_strip(lo, hi, Z_CLIP, np.inf, SIDEWALK, sw_obj)
    road_obj = cv.new_obj()
    road_id = cv.ground_strip(-rl, rr, Z_CLIP, np.inf, ROAD, road_obj)
    if cross:
        for si, s in enumerate((-1.0, 1.0)):
            lo, hi = sorted((s * BIG, edge[si]))
            cv.ground_strip(lo, hi, zc - 3.0, zc + wc + 3.0, SIDEWALK, sw_obj)
        cv.ground_strip(-BIG, BIG, zc, zc + wc, ROAD, road_obj)

    # ---- far skyline (buildings and tree clumps on a frontal plane)
    zs = rng.uniform(180.0, 350.0)
    X = (0.0 - cam.vanish_x) * zs / f - 5.0
    x_max = (W - cam.vanish_x) * zs / f + 5.0
    sky_obj = cv.new_obj()
    while X < x_max:
        wd = rng.uniform(6.0, 30.0)
        r = rng.random()
        if r < 0.55:
            cv.front_quad(zs, X, X + wd, 0.0, rng.uniform(6.0, 40.0), BUILDING, sky_obj)
        elif r < 0.85:
            for _ in range(3):
                cv.front_ellipse(zs, X + rng.uniform(0, wd), 0.0, rng.uniform(3.0, 8.0), rng.uniform(5.0, 14.0),
                                 VEGETATION, sky_obj)
        X += wd

    # ---- end-of-street building
    if np.isfinite(z_end):
        hb = rng.uniform(10.0, 32.0)
        o = cv.new_obj()
        iid = cv.front_quad(z_end, facade[0] - 25.0, facade[1] + 25.0, 0.0, hb, BUILDING, o)
        cv.windows[iid] = _window_params(rng, hb)
        cv.solids.append(Solid(facade[0] - 25.0, facade[1] + 25.0, z_end, z_end + 15.0, 0.0, hb))

    # ---- buildings and park trees, far to near
    back = [(b[1], b) for b in buildings] + [(t[0], t) for t in park_trees]
    for _, item in sorted(back, key=lambda t: -t[0]):
        if len(item) == 3:
            _draw_tree(cv, rng, item[1], item[0], item[2])
            continue
        s, z0, z1, hb, xf = item
        o = cv.new_obj()
        depth = rng.uniform(10.0, 20.0)
        wp = _window_params(rng, hb)
        iid = cv.side_quad(xf, z0, z1, 0.0, hb, BUILDING, o)
        if iid is not None:
            cv.windows[iid] = wp
        if z0 > Z_CLIP:  # the end wall facing the camera
            lo, hi = sorted((xf, xf + s * depth))
            cv.front_quad(z0, lo, hi, 0.0, hb, BUILDING, o)
        lo, hi = sorted((xf, xf + s * depth))
        cv.solids.append(Solid(lo, hi, z0, z1, 0.0, hb))

    # ---- walls / fences / hedges, far to near
    for s, z0, z1, cls, hw in sorted(walls, key=lambda w: -w[1]):
        si = int(s > 0)
        o = cv.new_obj()
        x = outer[si] + s * 0.05
        cv.side_quad(x, z0, z1, 0.0, hw, cls, o)
        if z0 > Z_CLIP:
            lo, hi = sorted((x, x + s * 0.3))
            cv.front_quad(z0, lo, hi, 0.0, hw, cls, o)
        lo, hi = sorted((x, x + s * 0.3))
        cv.solids.append(Solid(lo, hi, z0, z1, 0.0, hw))

    # ---- things, back to front along every line of sight
    for i in _visibility_order(np.array([foot for foot, _ in objects], np.float64).reshape(-1, 4)):
        objects[i][1]()

    # ---- ego vehicle bonnet (ignore label), as in Cityscapes
    if rng.random() < 0.5:
        hh = H * rng.uniform(0.06, 0.13)
        xs = np.linspace(-2.0, W + 2.0, 17)
        ys = H - hh * (1.0 - ((xs - W / 2) / (W * rng.uniform(0.6, 0.9))) ** 2)
        pts = [(float(a), float(b)) for a, b in zip(xs, ys)] + [(W + 2.0, H + 2.0), (-2.0, H + 2.0)]
        cv.polygon(pts, IGNORE_LABEL, cv.new_obj(), face=FACE_UP, plane=PLANE_FRONT, param=1.5, depth=1.5)

    return _finish(cv, road_id, edge, lane_w, n_left, n_right, zc)


def _finish(cv: _Canvas, road_id, edge, lane_w, n_left, n_right, zc) -> Layout:
    """Instance map -> labels, parts, depth, surface coordinates, windows and markings."""
    cam = cv.cam
    inst = np.asarray(cv.img, dtype=np.int32)
    shapes = cv.shapes
    n = len(shapes)
    cls_t = np.fromiter((s.cls for s in shapes), np.uint8, n)
    part_t = np.fromiter((s.part for s in shapes), np.uint8, n)
    obj_t = np.fromiter((s.obj for s in shapes), np.int32, n)
    face_t = np.fromiter((s.face for s in shapes), np.uint8, n)
    plane_t = np.fromiter((s.plane for s in shapes), np.uint8, n)
    param_t = np.fromiter((s.param for s in shapes), np.float32, n)
    labels = cls_t[inst]
    parts = part_t[inst]
    plane = plane_t[inst]
    param = param_t[inst]

    yy, xx = _pixel_grid(cam.height, cam.width)
    f = np.float32(cam.focal)
    dy = yy - np.float32(cam.horizon)
    dx = xx - np.float32(cam.vanish_x)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_ground = np.where(dy > 1e-3, f * np.float32(cam.cam_h) / np.maximum(dy, 1e-3), SKY_DEPTH)
        z_side = np.where(param * dx > 0, param * f / np.where(dx == 0, 1e-3, dx), SKY_DEPTH)
    depth = np.select([plane == PLANE_GROUND, plane == PLANE_SIDE, plane == PLANE_FRONT],
                      [z_ground, z_side, param], SKY_DEPTH)
    depth = np.where(plane == PLANE_SKY, SKY_DEPTH, np.clip(depth, Z_CLIP, MAX_DEPTH)).astype(np.float32)
    wx = dx * depth / f  # world X
    wy = np.float32(cam.cam_h) - dy * depth / f  # world Y
    surf_u = np.where(plane == PLANE_SIDE, depth, wx).astype(np.float32)
    surf_v = np.where(plane == PLANE_GROUND, depth, wy).astype(np.float32)

    # windows (regular grids on building faces), skipped where they would be sub-pixel
    if cv.windows:
        ids = np.fromiter(cv.windows.keys(), np.int32)
        table = np.zeros((n, 8), np.float32)
        table[ids] = np.array(list(cv.windows.values()), np.float32)
        has = np.zeros(n, bool)
        has[ids] = True
        m = has[inst]
        if m.any():
            iv = inst[m]
            sx, sy, fx, fy, u0, v_lo, v_hi, shop = table[iv].T
            u, v, z = surf_u[m], surf_v[m], depth[m]
            pu = np.where(plane[m] == PLANE_SIDE, z / np.maximum(np.abs(dx[m]), 1e-3), z / f)
            pv = z / f
            a = np.mod(u - u0, sx) / sx
            b = np.mod(v, sy) / sy
            win = (a < fx) & (b > 0.3) & (b < 0.3 + fy) & (v > v_lo) & (v < v_hi)
            win &= (pu * 1.3 < sx * fx) & (pv * 1.3 < sy * fy)
            shopwin = (shop > 0.5) & (v > 0.4) & (v < 2.7) & (np.mod(u - u0, 2 * sx) / (2 * sx) < 0.75)
            shopwin &= pu * 1.3 < sx
            parts[m] = np.where(win | shopwin, P_WINDOW, parts[m])

    # lane markings, crosswalk and curbs on the ground
    g = inst == road_id
    if g.any():
        X, Z = surf_u[g], surf_v[g]
        hw = np.maximum(0.08, 0.5 * Z / f)
        near = Z < 75.0
        dash = np.mod(Z + 2.0, 9.0) < 3.5
        mark = near & (np.abs(X + lane_w / 2) < hw * 1.3)  # centre line (solid)
        for k in range(1, n_left):
            mark |= near & dash & (np.abs(X + lane_w / 2 + k * lane_w) < hw)
        for k in range(1, n_right):
            mark |= near & dash & (np.abs(X + lane_w / 2 - k * lane_w) < hw)
        for xl in (-lane_w * (n_left + 0.5), lane_w * (n_right - 0.5)):  # edge / parking lines
            mark |= near & (np.abs(X - xl) < hw)
        if np.isfinite(zc):
            mark |= (Z > zc - 4.5) & (Z < zc - 1.0) & (np.mod(X, 1.2) < 0.6)
        parts[g] = np.where(mark, P_MARKING, parts[g])
    sw = (labels == SIDEWALK) & (plane == PLANE_GROUND)
    if sw.any():
        X = surf_u[sw]
        hw = np.maximum(0.15, 0.5 * surf_v[sw] / f)
        curb = (np.abs(X - edge[0]) < hw) | (np.abs(X - edge[1]) < hw)
        parts[sw] = np.where(curb, P_CURB, parts[sw])

    return Layout(
        labels=labels, instances=inst, parts=parts, depth=depth, surf_u=surf_u, surf_v=surf_v,
        shapes=tuple(shapes), solids=tuple(cv.solids), camera=cam, n_objects=cv.n_obj,
        inst_class=cls_t, inst_part=part_t, inst_object=obj_t, inst_face=face_t,
    )


# --------------------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth zero-mean noise (about unit variance), feature size ``cell`` pixels."""
    gh, gw = int(h / cell) + 2, int(w / cell) + 2
    small = Image.fromarray(rng.standard_normal((gh, gw)).astype(np.float32), mode="F")
    big = small.resize((int(gw * cell), int(gh * cell)), Image.BILINEAR)
    return np.asarray(big, dtype=np.float32)[:h, :w]


def _clip_near(poly: list[tuple[float, float]], zmin: float) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clip of a ground polygon (X, Z) to Z >= zmin."""
    out = []
    for i, cur in enumerate(poly):
        prev = poly[i - 1]
        cin, pin = cur[1] >= zmin, prev[1] >= zmin
        if cin != pin:
            t = (zmin - prev[1]) / (cur[1] - prev[1])
            out.append((prev[0] + t * (cur[0] - prev[0]), zmin))
        if cin:
            out.append(cur)
    return out


_UNIT_BOX = np.array([(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)])
_UNIT_OCT = np.array([(math.cos(a), math.sin(a)) for a in np.linspace(0.0, 2 * math.pi, 8, endpoint=False)])


def _class_lut(*classes: int) -> np.ndarray:
    lut = np.zeros(256, bool)
    lut[list(classes)] = True
    return lut


_GROUND_LUT = _class_lut(ROAD, SIDEWALK, TERRAIN)


def _sweep_order(unit: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Back and front vertex chains of a convex CCW polygon swept along ``d``.

    The sweep (Minkowski sum with the segment [0, d]) is the back chain followed by the
    front chain shifted by d; both chains include the two tangent vertices.
    """
    k = len(unit)
    proj = unit @ np.array([-d[1], d[0]])
    a, b = int(np.argmin(proj)), int(np.argmax(proj))
    chain1 = np.array([(a + i) % k for i in range((b - a) % k + 1)])
    chain2 = np.array([(b + i) % k for i in range((a - b) % k + 1)])
    if (unit[chain1] @ d).mean() <= (unit[chain2] @ d).mean():
        return chain1, chain2
    return chain2, chain1


def _shadow_mask(layout: Layout, sun: np.ndarray) -> np.ndarray:
    """Hard cast shadows of all solids on the ground, as a bool (H, W) mask on ground classes."""
    cam = layout.camera
    img = Image.new("L", (cam.width, cam.height), 0)
    draw = ImageDraw.Draw(img)
    k = np.array([-sun[0] / sun[1], -sun[2] / sun[1]], np.float64)  # ground offset per metre of height

    def project(poly: np.ndarray) -> np.ndarray:
        xs = np.clip(cam.vanish_x + cam.focal * poly[..., 0] / poly[..., 1], -4e4, 4e4)
        ys = np.minimum(cam.horizon + cam.focal * cam.cam_h / poly[..., 1], 4e4)
        return np.stack([xs, ys], -1)

    if layout.solids:
        arr = np.array([(s.x0, s.x1, s.z0, s.z1, s.y0, s.y1, s.round) for s in layout.solids], np.float64)
        for is_round, unit in ((0.0, _UNIT_BOX), (1.0, _UNIT_OCT)):
            sel = arr[arr[:, 6] == is_round]
            if not len(sel):
                continue
            back, front = _sweep_order(unit, k)
            centre = np.stack([sel[:, 0] + sel[:, 1], sel[:, 2] + sel[:, 3]], 1) / 2
            half = np.stack([sel[:, 1] - sel[:, 0], sel[:, 3] - sel[:, 2]], 1) / 2
            foot = centre[:, None, :] + half[:, None, :] * unit[None] + sel[:, 4, None, None] * k
            sweep = ((sel[:, 5] - sel[:, 4])[:, None] * k)[:, None, :]
            poly = np.concatenate([foot[:, back], foot[:, front] + sweep], axis=1)
            near = poly[..., 1].min(1) < 0.5
            for p in poly[near]:
                clipped = _clip_near([tuple(q) for q in p], 0.5)
                if len(clipped) >= 3:
                    draw.polygon(project(np.array(clipped)).ravel().tolist(), fill=1)
            far = poly[~near]
            for pts in project(far).reshape(far.shape[0], -1 if far.shape[0] else 0).tolist():
                draw.polygon(pts, fill=1)
    return np.asarray(img, dtype=bool) & _GROUND_LUT[layout.labels]


def _sun(rng: np.random.Generator) -> np.ndarray:
    """Direction the light travels (unit vector, pointing down)."""
    side = rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 1.0)
    v = np.array([side, -rng.uniform(0.6, 1.3), rng.uniform(-0.6, 0.7)])
    return (v / np.linalg.norm(v)).astype(np.float32)


def _face_shade(sun: np.ndarray, ambient: float, diffuse: float) -> np.ndarray:
    """Shading factor per FACE_* orientation: ambient + diffuse * max(0, n . light)."""
    lit = np.clip(_NORMALS @ -sun, 0.0, 1.0)
    shade = ambient + diffuse * lit
    shade[FACE_FLAT] = 1.0
    shade[FACE_UP] = ambient + diffuse * lit[FACE_UP]
    return shade.astype(np.float32)


def _materials(layout: Layout) -> np.ndarray:
    """Per-instance material index: part if any, else NUM_PARTS + class (19 = ignore/bonnet)."""
    cls = layout.inst_class.astype(np.int64)
    cls = np.where(cls == IGNORE_LABEL, NUM_SCENE_CLASSES, cls)
    return np.where(layout.inst_part > 0, layout.inst_part, NUM_PARTS + cls)


def _palette_table(spec: dict[int, list]) -> tuple[np.ndarray, np.ndarray]:
    n_mat = NUM_PARTS + NUM_SCENE_CLASSES + 1
    k = max(len(v) for v in spec.values())
    table = np.zeros((n_mat, k, 3), np.float32)
    counts = np.ones(n_mat, np.int64)
    for m, cols in spec.items():
        table[m, : len(cols)] = np.asarray(cols, np.float32) / 255.0
        counts[m] = len(cols)
    return table, counts


def _instance_colours(layout: Layout, rng, table, counts, obj_jitter: float, inst_jitter: float) -> np.ndarray:
    mat = _materials(layout)
    n = len(mat)
    obj_r = rng.random((layout.n_objects + 1, 2)).astype(np.float32)
    obj = layout.inst_object
    choice = np.minimum((obj_r[obj, 0] * counts[mat]).astype(np.int64), counts[mat] - 1)
    col = table[mat, choice].copy()
    col *= 1.0 + obj_jitter * (obj_r[obj, 1:2] * 2.0 - 1.0)
    col *= 1.0 + inst_jitter * rng.standard_normal((n, 3)).astype(np.float32)
    return col


def _per_object(layout: Layout, rng, table_row: np.ndarray, count: int) -> np.ndarray:
    """A colour per object, chosen from a material's options (windows, markings, ...)."""
    pick = rng.integers(0, count, size=layout.n_objects + 1)
    return table_row[pick]


M = NUM_PARTS  # material offset of the classes
_GAME = {
    M + ROAD: [(72, 72, 84), (84, 80, 92), (66, 70, 78)],
    M + SIDEWALK: [(206, 178, 160), (196, 196, 190), (214, 190, 140)],
    M + BUILDING: [(200, 80, 60), (230, 190, 90), (90, 170, 190), (220, 220, 200), (170, 110, 200),
                   (240, 150, 90), (120, 190, 120), (190, 60, 90)],
    M + WALL: [(210, 200, 110), (180, 90, 60), (150, 150, 210)],
    M + FENCE: [(210, 140, 60), (90, 200, 200), (230, 230, 230)],
    M + POLE: [(90, 110, 200), (130, 130, 145), (60, 160, 90)],
    M + LIGHT: [(40, 50, 40), (230, 200, 40)],
    M + SIGN: [(240, 240, 40)],
    M + VEGETATION: [(50, 190, 60), (90, 210, 40), (30, 160, 90)],
    M + TERRAIN: [(150, 230, 70), (190, 220, 80)],
    M + SKY: [(70, 150, 255)],
    M + PERSON: [(240, 60, 60)],
    M + RIDER: [(250, 120, 30)],
    M + CAR: [(240, 30, 30), (30, 90, 240), (250, 210, 20), (30, 200, 80), (245, 245, 245), (40, 40, 50),
              (250, 120, 20), (160, 40, 220)],
    M + TRUCK: [(240, 240, 240), (240, 150, 20), (40, 140, 230)],
    M + BUS: [(250, 200, 0), (230, 40, 40), (40, 180, 90)],
    M + TRAIN: [(220, 30, 60), (40, 200, 210)],
    M + MOTORCYCLE: [(230, 20, 20), (20, 20, 30), (40, 90, 250)],
    M + BICYCLE: [(20, 200, 230), (240, 40, 160), (250, 230, 30)],
    M + NUM_SCENE_CLASSES: [(20, 30, 120)],
    P_WINDOW: [(140, 220, 255), (40, 70, 150), (255, 230, 120)],
    P_MARKING: [(255, 255, 255)],
    P_CURB: [(235, 235, 235), (240, 60, 60)],
    P_GLASS: [(110, 200, 250), (60, 110, 190)],
    P_WHEEL: [(25, 25, 30)],
    P_TAIL: [(255, 30, 30)],
    P_HEAD: [(255, 255, 200)],
    P_LAMP_RED: [(255, 30, 30)],
    P_LAMP_AMBER: [(255, 190, 0)],
    P_LAMP_GREEN: [(40, 255, 80)],
    P_SKIN: [(255, 205, 160), (200, 140, 90), (140, 90, 60)],
    P_HAIR: [(60, 40, 20), (240, 210, 80), (20, 20, 20), (200, 60, 30)],
    P_SHIRT: [(240, 40, 40), (40, 90, 250), (40, 210, 80), (250, 220, 30), (240, 240, 240), (200, 40, 220)],
    P_PANTS: [(30, 50, 140), (40, 40, 40), (200, 170, 120)],
    P_TRUNK: [(140, 80, 30)],
    P_SIGN_RIM: [(240, 30, 30), (30, 70, 230), (250, 250, 250)],
    P_SIGN_FACE: [(250, 250, 250), (255, 220, 0), (40, 110, 250)],
    P_LAMPHEAD: [(250, 250, 200)],
    P_BUMPER: [(60, 60, 70), (200, 200, 210)],
}
_PHOTO = {
    M + ROAD: [(98, 97, 96), (88, 88, 90), (108, 105, 100)],
    M + SIDEWALK: [(150, 144, 138), (138, 136, 132), (160, 150, 140)],
    M + BUILDING: [(150, 140, 128), (120, 112, 104), (170, 160, 145), (110, 100, 95), (140, 130, 120),
                   (160, 150, 140), (125, 120, 118), (135, 115, 100)],
    M + WALL: [(140, 135, 125), (120, 115, 110), (150, 140, 125)],
    M + FENCE: [(105, 100, 92), (80, 82, 80), (130, 120, 105)],
    M + POLE: [(95, 98, 100), (110, 110, 108), (70, 72, 75)],
    M + LIGHT: [(45, 45, 45), (60, 58, 50)],
    M + SIGN: [(170, 170, 165)],
    M + VEGETATION: [(72, 90, 48), (60, 80, 45), (85, 95, 55)],
    M + TERRAIN: [(110, 118, 72), (118, 112, 80)],
    M + SKY: [(175, 195, 215)],
    M + PERSON: [(80, 70, 65)],
    M + RIDER: [(75, 70, 70)],
    M + CAR: [(140, 142, 145), (40, 40, 44), (200, 200, 198), (60, 70, 95), (110, 40, 40), (90, 95, 100),
              (170, 165, 155), (50, 60, 55)],
    M + TRUCK: [(190, 190, 185), (120, 125, 130), (150, 100, 70)],
    M + BUS: [(190, 185, 170), (150, 60, 55), (200, 200, 195)],
    M + TRAIN: [(190, 190, 190), (160, 60, 60)],
    M + MOTORCYCLE: [(40, 40, 42), (110, 40, 40), (150, 150, 150)],
    M + BICYCLE: [(40, 42, 45), (100, 100, 105), (90, 60, 50)],
    M + NUM_SCENE_CLASSES: [(35, 38, 45)],
    P_WINDOW: [(70, 80, 90), (55, 60, 68), (95, 105, 115)],
    P_MARKING: [(200, 200, 195)],
    P_CURB: [(165, 162, 158)],
    P_GLASS: [(45, 52, 60), (65, 75, 85)],
    P_WHEEL: [(28, 28, 30)],
    P_TAIL: [(150, 40, 35)],
    P_HEAD: [(200, 200, 190)],
    P_LAMP_RED: [(120, 40, 30)],
    P_LAMP_AMBER: [(120, 90, 30)],
    P_LAMP_GREEN: [(40, 110, 80)],
    P_SKIN: [(195, 160, 135), (150, 110, 85), (100, 75, 60)],
    P_HAIR: [(45, 35, 28), (120, 100, 70), (30, 30, 30)],
    P_SHIRT: [(60, 62, 70), (120, 115, 105), (40, 45, 60), (150, 60, 55), (170, 170, 165), (80, 90, 70)],
    P_PANTS: [(40, 45, 60), (35, 35, 38), (110, 100, 85)],
    P_TRUNK: [(70, 58, 45)],
    P_SIGN_RIM: [(160, 45, 40), (40, 70, 140), (190, 190, 185)],
    P_SIGN_FACE: [(200, 200, 195), (190, 160, 50), (50, 80, 150)],
    P_LAMPHEAD: [(190, 190, 180)],
    P_BUMPER: [(50, 50, 52), (120, 120, 120)],
}
_GAME_TABLE = _palette_table(_GAME)
_PHOTO_TABLE = _palette_table(_PHOTO)
_LIT = np.array([P_LAMP_RED, P_LAMP_AMBER, P_LAMP_GREEN])


def _base(layout: Layout, rng, tables, obj_jitter, inst_jitter) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel base colour (float32 H x W x 3, 0..1) and which instances are lit lamps."""
    table, counts = tables
    col = _instance_colours(layout, rng, table, counts, obj_jitter, inst_jitter)
    # one lamp of each traffic light is lit; the others are dark
    lamps = np.isin(layout.inst_part, _LIT)
    lit = np.zeros(len(col), bool)
    if lamps.any():
        lit_part = _LIT[rng.integers(0, 3, size=layout.n_objects + 1)]
        on = layout.inst_part == lit_part[layout.inst_object]
        col[lamps & ~on] *= 0.25
        lit = lamps & on
    return col[layout.instances], lit


def _procedural_parts(img, layout, rng, tables) -> None:
    """Paint windows, lane markings and curbs with per-object colours."""
    table, counts = tables
    parts = layout.parts
    for part in (P_WINDOW, P_MARKING, P_CURB):
        m = parts == part
        if not m.any():
            continue
        cols = _per_object(layout, rng, table[part], int(counts[part]))
        img[m] = cols[layout.inst_object[layout.instances[m]]]


def _sky_gradient(layout: Layout, top: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    H = layout.camera.height
    t = np.clip(np.arange(H, dtype=np.float32) / max(layout.camera.horizon, 1.0), 0.0, 1.0) ** 0.8
    return (top[None, :] * (1 - t[:, None]) + horizon[None, :] * t[:, None]).astype(np.float32)  # (H, 3)


# --------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------


def render_game(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Video-game look: saturated flat colours, cel shading, outlines, regular textures, hard shadows."""
    cam = layout.camera
    H, W = cam.height, cam.width
    labels, parts, inst = layout.labels, layout.parts, layout.instances
    obj = layout.inst_object[inst]
    img, lit = _base(layout, rng, _GAME_TABLE, obj_jitter=0.12, inst_jitter=0.02)
    _procedural_parts(img, layout, rng, _GAME_TABLE)
    u, v = layout.surf_u, layout.surf_v
    pix = layout.depth / np.float32(cam.focal)  # metres per pixel

    # sky: saturated vertical gradient plus flat cartoon clouds
    sky = labels == SKY
    top = np.array([0.15, 0.35, 0.95], np.float32) * np.float32(rng.uniform(0.85, 1.05))
    grad = _sky_gradient(layout, top, np.array([0.55, 0.8, 1.0], np.float32))
    clouds = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(clouds)
    for _ in range(rng.integers(1, 5)):
        cx, cy = rng.uniform(0, W), rng.uniform(0, cam.horizon * 0.7)
        for _ in range(rng.integers(3, 6)):
            rx, ry = rng.uniform(0.03, 0.08) * W, rng.uniform(0.03, 0.06) * H
            ox, oy = rng.normal(0, rx), rng.normal(0, ry * 0.4)
            draw.ellipse((cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry), fill=1)
    rows = np.nonzero(sky)[0]
    img[sky] = np.where(np.asarray(clouds, bool)[sky][:, None], np.float32(0.97), grad[rows])

    # regular synthetic textures, as one multiplicative factor map
    plain = parts == P_NONE
    bld = (labels == BUILDING) & plain
    brick_obj = rng.random(layout.n_objects + 1) < 0.5
    brick = ((bld & brick_obj[obj]) | ((labels == WALL) & plain)) & (pix < 0.12)
    row = np.floor(v * 2.0)
    mortar = (np.mod(v, 0.5) < 0.1) | (np.mod(u + 0.6 * np.mod(row, 2.0), 1.2) < 0.12)
    tex = np.where(brick & mortar, np.float32(0.78), np.float32(1.0))
    tex *= np.where(bld & (np.mod(v, 3.2) < 0.35) & (pix < 0.5), np.float32(0.82), np.float32(1.0))
    tile = (np.mod(u, 1.0) < 0.1) | (np.mod(v, 1.0) < 0.1)
    tex *= np.where((labels == SIDEWALK) & plain & tile & (pix < 0.15), np.float32(0.8), np.float32(1.0))
    stripe = np.where(np.mod(v, 4.0) < 2.0, np.float32(1.08), np.float32(0.92))
    tex *= np.where(labels == TERRAIN, stripe, np.float32(1.0))
    tex *= np.where((labels == FENCE) & (np.mod(u, 0.3) < 0.12) & (pix < 0.1), np.float32(0.7), np.float32(1.0))
    blob = np.where(_noise(rng, H, W, max(2.0, W / 64)) > 0.3, np.float32(1.2), np.float32(0.9))
    tex *= np.where((labels == VEGETATION) & plain, blob, np.float32(1.0))
    tex *= np.where((labels == ROAD) & plain, 1.0 + 0.04 * _noise(rng, H, W, 6.0), np.float32(1.0))

    # cel shading (three flat levels), hard cast shadows, dark outlines between objects
    sun = _sun(rng)
    shade = _face_shade(sun, ambient=0.62, diffuse=0.45)
    shade = np.where(shade > 0.85, 1.05, np.where(shade > 0.7, 0.85, 0.7)).astype(np.float32)
    shade[FACE_FLAT] = 1.0
    tex *= shade[layout.inst_face][inst]
    tex *= np.where(_shadow_mask(layout, sun), np.float32(0.55), np.float32(1.0))
    edge = np.zeros((H, W), bool)
    edge[:, 1:] |= obj[:, 1:] != obj[:, :-1]
    edge[1:, :] |= obj[1:, :] != obj[:-1, :]
    edge &= ~sky
    tex *= np.where(edge, np.float32(0.45), np.float32(1.0))
    img *= tex[..., None]

    # emissive bits (lit lamps, head lights, street lamps) stay bright
    glow = _GLOW_PARTS[parts] | lit[inst]
    img[glow] = np.maximum(img[glow], np.float32(0.9))
    out = (np.clip(img, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
    return _POSTERISE[out]  # mild posterisation


_GLOW_PARTS = np.zeros(256, bool)
_GLOW_PARTS[[P_LAMPHEAD, P_HEAD]] = True
_POSTERISE = np.round(np.arange(256) * 0.65 + np.round(np.arange(256) / 17.0) * 5.95).clip(0, 255).astype(np.uint8)
_PHOTO_TEXTURE = np.zeros(256, np.float32)  # fine-texture amplitude per class
_PHOTO_TEXTURE[[ROAD, SIDEWALK, TERRAIN, BUILDING, WALL, VEGETATION, FENCE]] = (
    0.07, 0.05, 0.12, 0.05, 0.06, 0.22, 0.05)
_STAINED = _class_lut(ROAD, BUILDING, WALL, SIDEWALK)


def render_photo(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Photo look: muted palette, fine textures, soft light, haze, vignetting, blur, noise, JPEG."""
    cam = layout.camera
    H, W = cam.height, cam.width
    labels, parts, inst = layout.labels, layout.parts, layout.instances
    img, _ = _base(layout, rng, _PHOTO_TABLE, obj_jitter=0.18, inst_jitter=0.01)
    _procedural_parts(img, layout, rng, _PHOTO_TABLE)

    # fine grain, coarse blotches and large stains (multiplicative luminance)
    amp = _PHOTO_TEXTURE[labels]
    tex = 1.0 + amp * (rng.standard_normal((H, W), dtype=np.float32) + 0.6 * _noise(rng, H, W, max(3.0, W / 40)))
    tex += np.float32(0.06) * _STAINED[labels] * _noise(rng, H, W, max(6.0, W / 16))
    # windows and glass reflect the sky: brighter towards the top of the frame
    refl = (parts == P_WINDOW) | (parts == P_GLASS)
    t_row = (1.0 - np.arange(H, dtype=np.float32) / H)[:, None]
    tex *= np.where(refl, 0.75 + 0.6 * t_row, np.float32(1.0))

    # lighting: sunny with soft shadows, or overcast
    sunny = rng.random() < 0.55
    sun = _sun(rng)
    if sunny:
        tex *= _face_shade(sun, ambient=0.7, diffuse=0.4)[layout.inst_face][inst]
        sm = Image.fromarray(_shadow_mask(layout, sun).astype(np.uint8) * 255).filter(ImageFilter.BoxBlur(1.5))
        tex *= 1.0 - np.asarray(sm, np.float32) * np.float32(0.35 / 255.0)
        top = np.array([0.45, 0.6, 0.8], np.float32)
        hor = np.array([0.82, 0.86, 0.9], np.float32)
    else:
        tex *= _face_shade(sun, ambient=0.88, diffuse=0.12)[layout.inst_face][inst]
        g = np.float32(rng.uniform(0.72, 0.88))
        top = np.array([g, g + 0.02, g + 0.05], np.float32)
        hor = np.array([g + 0.08, g + 0.09, g + 0.1], np.float32)

    # aerial perspective: far things fade into the horizon colour
    sky = labels == SKY
    haze = (1.0 - np.exp(-layout.depth / np.float32(rng.uniform(120.0, 450.0)))) * ~sky
    img *= (tex * (1.0 - haze))[..., None]
    img += haze[..., None] * hor
    # sky: gradient with soft clouds
    rows = np.nonzero(sky)[0]
    cloud = np.clip(_noise(rng, H, W, max(6.0, W / 14))[sky] * 0.5 + 0.2, 0.0, 1.0)[:, None]
    img[sky] = _sky_gradient(layout, top, hor)[rows] * (1.0 - 0.5 * cloud) + 0.465 * cloud

    # colour temperature, exposure, vignetting, tone curve
    temp = rng.uniform(-1.0, 1.0)
    gains = np.array([1.0 + 0.1 * temp, 1.0, 1.0 - 0.12 * temp], np.float32) * np.float32(rng.uniform(0.8, 1.15))
    yy, xx = _pixel_grid(H, W)
    vig = 1.0 - np.float32(rng.uniform(0.15, 0.4) * 2.0) * ((xx / W - 0.5) ** 2 + (yy / H - 0.5) ** 2)
    img *= vig[..., None] * gains
    out = (np.clip(img, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
    gamma = rng.uniform(0.85, 1.15)
    out = (255.0 * (np.arange(256) / 255.0) ** gamma + 0.5).astype(np.uint8)[out]

    # optics and sensor: blur, noise, JPEG
    out = np.asarray(Image.fromarray(out).filter(ImageFilter.BoxBlur(rng.uniform(0.5, 0.9))), np.float32)
    sigma = np.float32(rng.uniform(2.0, 6.0))
    noise = rng.standard_normal((H, W, 1), dtype=np.float32) + 0.5 * rng.standard_normal((H, W, 3), dtype=np.float32)
    out = np.clip(out + sigma * noise, 0.0, 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(25, 65)))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8)


_RENDERERS: dict[str, Callable[[Layout, np.random.Generator], np.ndarray]] = {
    "game": render_game, "photo": render_photo,
}


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """A label map (..., H, W) in the Cityscapes colours (ignore -> black), uint8 (..., H, W, 3)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:NUM_SCENE_CLASSES] = CITYSCAPES_PALETTE
    return lut[mask]


def build_scenes(
    style: Literal["game", "photo"],
    n_train: int,
    n_test: int,
    seed: int,
    height: int = 128,
    width: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render ``n_train + n_test`` street scenes in one style.

    Returns (train_images (N, H, W, 3) uint8, train_masks (N, H, W) uint8 with values in
    0..18 or 255, test_images, test_masks). Deterministic in ``seed``; the two styles use
    different random streams, so with the same seed they still show different streets.
    Each frame has its own child seed, so a frame does not depend on the frame count.
    """
    if style not in _RENDERERS:
        raise PipelineError(f"unknown scenes style {style!r}; use one of {', '.join(STYLES)}")
    if int(n_train) < 1 or int(n_test) < 1:
        raise PipelineError(f"scenes need n_train >= 1 and n_test >= 1, got n_train={n_train}, n_test={n_test}")
    if int(height) < 32 or int(width) < 32:
        raise PipelineError(f"scenes frames must be at least 32x32 pixels, got {height}x{width}; use e.g. 128x256")
    if int(seed) < 0:
        raise PipelineError(f"scenes seed must be a non-negative integer, got {seed}")
    n = int(n_train) + int(n_test)
    H, W = int(height), int(width)
    images = np.empty((n, H, W, 3), np.uint8)
    masks = np.empty((n, H, W), np.uint8)
    render = _RENDERERS[style]
    root = np.random.SeedSequence([int(seed), _STYLE_STREAM[style]])
    for i, child in enumerate(root.spawn(n)):
        layout_seq, render_seq = child.spawn(2)
        layout = sample_layout(np.random.default_rng(layout_seq), H, W)
        images[i] = render(layout, np.random.default_rng(render_seq))
        masks[i] = layout.labels
    return images[:n_train], masks[:n_train], images[n_train:], masks[n_train:]
