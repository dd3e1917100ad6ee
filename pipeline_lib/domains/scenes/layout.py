"""The layout sampler of the scenes domain: one random street as labels, parts, depth and surface coordinates.

:func:`sample_layout` picks a camera and a road cross-section, plans buildings, parks, walls and hedges along both
sides, places the things on sidewalks and lanes (drawn by :mod:`pipeline_lib.domains.scenes.objects`), and rasterises
everything far to near on the canvas. ``_finish`` then turns the instance map into a :class:`Layout`: per-pixel
labels, parts (adding window grids, lane markings, the crosswalk and curbs per pixel), depth and surface coordinates,
plus per-instance attribute arrays for the renderers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline_lib.domains.scenes.geometry import (
    BIG,
    FACE_UP,
    MAX_DEPTH,
    PLANE_FRONT,
    PLANE_GROUND,
    PLANE_SIDE,
    PLANE_SKY,
    SKY_DEPTH,
    Z_CLIP,
    Camera,
    Shape,
    Solid,
    _Canvas,
    _pixel_grid,
    _visibility_order,
)
from pipeline_lib.domains.scenes.labels import (
    BUILDING,
    FENCE,
    IGNORE_LABEL,
    P_CURB,
    P_MARKING,
    P_WINDOW,
    ROAD,
    SIDEWALK,
    TERRAIN,
    VEGETATION,
    WALL,
)
from pipeline_lib.domains.scenes.objects import (
    _draw_person,
    _draw_sign,
    _draw_streetlamp,
    _draw_traffic_light,
    _draw_tree,
    _draw_two_wheeler,
    _draw_vehicle,
    _vehicle_dims,
)


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
