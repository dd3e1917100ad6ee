"""World geometry of the scenes domain: camera, projection, the rasterising canvas, clipping and visibility.

A pinhole :class:`Camera` maps world points (X right, Y up, Z forward, flat ground at Y = 0) to pixels. The canvas
(``_Canvas``) projects world-space quads, ellipses, lines and ground strips and rasterises them with the painter's
algorithm into an instance-id image, recording each primitive as a :class:`Shape` and each shadow-casting box as a
:class:`Solid`. Also here: how a shape maps back to the world (``PLANE_*``), surface orientations and their normals
(``FACE_*``), depth limits, the cached pixel-centre grid, near-plane polygon clipping, convex sweeps (for cast
shadows) and the back-to-front visibility order of ground footprints. Nothing here draws random numbers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from pipeline_lib.domains.scenes.labels import P_NONE, SKY

# How a shape's pixels map back to the world (for depth and surface coordinates).
PLANE_SKY, PLANE_GROUND, PLANE_SIDE, PLANE_FRONT = range(4)
# Surface orientation, for shading: facing the camera, facing +X / -X, facing up, unlit.
FACE_FRONT, FACE_POSX, FACE_NEGX, FACE_UP, FACE_FLAT = range(5)
_NORMALS = np.array([(0, 0, -1), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, 0, 0)], dtype=np.float32)

SKY_DEPTH = 5000.0
MAX_DEPTH = 2000.0  # depth of anything but the sky is clipped to this
Z_CLIP = 0.4  # near clipping distance (m) for world quads
BIG = 2000.0  # "infinitely" far sideways (m)


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
