"""The two renderers of the scenes domain, which paint a :class:`~pipeline_lib.domains.scenes.layout.Layout`.

Shared machinery: a material per instance (its part, else its class), per-style palettes with per-object colour
choice and jitter, smooth noise, the sun direction and per-face shading, hard cast shadows of the layout's solids on
the ground, and sky gradients. :func:`render_game` gives a video-game look (saturated flat colours, cel shading, dark
outlines, regular textures, hard shadows); :func:`render_photo` a photo look (muted palette, fine textures, soft light
or overcast, haze, colour temperature, vignetting, blur, sensor noise and a JPEG round trip). Both draw all their
randomness from the generator they are given.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline_lib.domains.scenes.geometry import (
    _NORMALS,
    _UNIT_BOX,
    _UNIT_OCT,
    FACE_FLAT,
    FACE_UP,
    _clip_near,
    _pixel_grid,
    _sweep_order,
)
from pipeline_lib.domains.scenes.labels import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    IGNORE_LABEL,
    LIGHT,
    MOTORCYCLE,
    NUM_PARTS,
    NUM_SCENE_CLASSES,
    P_BUMPER,
    P_CURB,
    P_GLASS,
    P_HAIR,
    P_HEAD,
    P_LAMP_AMBER,
    P_LAMP_GREEN,
    P_LAMP_RED,
    P_LAMPHEAD,
    P_MARKING,
    P_NONE,
    P_PANTS,
    P_SHIRT,
    P_SIGN_FACE,
    P_SIGN_RIM,
    P_SKIN,
    P_TAIL,
    P_TRUNK,
    P_WHEEL,
    P_WINDOW,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SIGN,
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
)
from pipeline_lib.domains.scenes.layout import Layout


# --------------------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth zero-mean noise (about unit variance), feature size ``cell`` pixels."""
    gh, gw = int(h / cell) + 2, int(w / cell) + 2
    small = Image.fromarray(rng.standard_normal((gh, gw)).astype(np.float32), mode="F")
    big = small.resize((int(gw * cell), int(gh * cell)), Image.BILINEAR)
    return np.asarray(big, dtype=np.float32)[:h, :w]


def _class_lut(*classes: int) -> np.ndarray:
    lut = np.zeros(256, bool)
    lut[list(classes)] = True
    return lut


_GROUND_LUT = _class_lut(ROAD, SIDEWALK, TERRAIN)


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
