"""Object drawers of the scenes domain: persons, vehicles, two-wheelers, street lamps, signs, traffic lights, trees.

Each ``_draw_*`` function takes the canvas, a random generator and a world position, draws one object (its parts
tagged with ``P_*`` materials, its class with the Cityscapes train id) onto the canvas in world coordinates, and
registers the boxes that cast its shadow. The sampler in :mod:`pipeline_lib.domains.scenes.layout` decides where
objects stand and in which order they are drawn.
"""

from __future__ import annotations

from pipeline_lib.domains.scenes.geometry import Solid, _Canvas
from pipeline_lib.domains.scenes.labels import (
    BICYCLE,
    BUS,
    CAR,
    LIGHT,
    MOTORCYCLE,
    P_BUMPER,
    P_GLASS,
    P_HAIR,
    P_HEAD,
    P_LAMP_AMBER,
    P_LAMP_GREEN,
    P_LAMP_RED,
    P_LAMPHEAD,
    P_PANTS,
    P_SHIRT,
    P_SIGN_FACE,
    P_SIGN_RIM,
    P_SKIN,
    P_TAIL,
    P_TRUNK,
    P_WHEEL,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    TRAIN,
    TRUCK,
    VEGETATION,
)


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
