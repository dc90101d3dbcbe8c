"""CarRacing's 96x96 state drawn directly, without the 1000x800 pygame surface.

gymnasium draws the state by painting the whole world on a 1000x800 surface (every
road tile, grass patch and the car, anti-aliased), flipping it, drawing the indicator
bar and the reward text, then `pygame.transform.smoothscale` to 96x96.  Here:

* the road region (output rows 0-83 = surface rows 0-699) is rasterised straight at
  `supersampling` x the output size: the world -> screen affine (zoom, scroll, rotation
  by -hull angle, flip, the anisotropic 1000x800 -> 96x96 scale) applied with numpy to
  every vertex at once, only polygons whose bounding circle meets the view drawn
  (cv2.fillPoly, sub-pixel vertices, in gymnasium's order), then box-averaged down
  (halvings): the area mean smoothscale takes;
* the indicator bar (rows 84-95 = surface rows 700-799) is made of axis-aligned
  rectangles: their pixels (pygame.draw.polygon truncates coordinates, fills inclusive)
  are kept as a small grid of constant cells, whose area mean is two tiny matrix
  products; the reward text is pygame's own glyphs, smoothscaled once per string;
* smoothscale's fixed point truncates twice (a flat 102 comes out 100): the same
  level map, measured from pygame itself, is applied to the box means.

What differs from gymnasium is sub-pixel only: polygon edges (gfxdraw's anti-aliased
outline vs. exact coverage at the supersampled grid) and the rounding of edge pixels.
tests/envs/test_carracing_fast.py measures it step by step against CarRacing-v3.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np
import pygame
from gymnasium.envs.box2d import car_dynamics as cd
from gymnasium.envs.box2d.car_racing import GRASS_DIM, PLAYFIELD, SCALE, STATE_H, STATE_W, WINDOW_H, WINDOW_W, ZOOM

SUPERSAMPLING = (1, 2, 4, 8)
BAR_TOP = WINDOW_H - 5 * WINDOW_H / 40.0  # 700: the black indicator bar covers surface rows 700-799
ROAD_ROWS = round(BAR_TOP * STATE_H / WINDOW_H)  # 84 output rows above the bar
BAR_ROWS = (int(BAR_TOP), WINDOW_H)
SHIFT = 8  # cv2.fillPoly's fractional bits: vertices at 1/256 of a supersampled pixel
_ONE = float(1 << SHIFT)

# gymnasium's _render_road: the 20 x 20 grid of grass squares (every other cell)
_GRASS_POLYS = np.array(
    [
        [(GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y), (GRASS_DIM * x, GRASS_DIM * y),
         (GRASS_DIM * x, GRASS_DIM * y + GRASS_DIM), (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + GRASS_DIM)]
        for x in range(-20, 20, 2)
        for y in range(-20, 20, 2)
    ],
    dtype=np.float64,
)  # fmt: skip
_FIELD_POLY = np.array([[(PLAYFIELD, PLAYFIELD), (PLAYFIELD, -PLAYFIELD), (-PLAYFIELD, -PLAYFIELD), (-PLAYFIELD, PLAYFIELD)]])
HULL_COLOR = (204, 0, 0)  # [int(c * 255) for c in (0.8, 0.0, 0.0)], as car.draw converts it
WHEEL_COLOR = tuple(int(c * 255) for c in cd.WHEEL_COLOR)


class Polygons:
    """Quadrilaterals (n, 4, 2) in world units, in homogeneous coordinates, with each
    one's centre and radius: the view test maps only the centres."""

    def __init__(self, polys: np.ndarray) -> None:
        polys = np.asarray(polys, dtype=np.float64).reshape(-1, 4, 2)
        self.vertices = np.concatenate([polys, np.ones(polys.shape[:2] + (1,))], axis=2)  # (n, 4, 3)
        centre = polys.mean(axis=1)
        self.centres = np.concatenate([centre, np.ones((len(polys), 1))], axis=1)  # (n, 3)
        self.radius = np.linalg.norm(polys - centre[:, None], axis=2).max(axis=1)

    def __len__(self) -> int:
        return len(self.centres)

    def visible(self, m: np.ndarray, b: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """cv2 fixed-point vertices (k, 4, 2) of the polygons that can meet an h x w
        canvas under the map p -> m p + b, and their indices (in drawing order)."""
        affine = np.empty((3, 2))  # [x, y, 1] @ affine = (col, row)
        affine[:2], affine[2] = m.T, b
        centres = self.centres @ affine
        # a vertex lies within radius x |row of m| of its centre, per canvas axis
        near_u = np.abs(centres[:, 0] - w / 2) < self.radius * math.hypot(*m[0]) + (w / 2 + 1)
        near_v = np.abs(centres[:, 1] - h / 2) < self.radius * math.hypot(*m[1]) + (h / 2 + 1)
        idx = np.flatnonzero(near_u & near_v)
        pts = (self.vertices[idx].reshape(-1, 3) @ (affine * _ONE)).reshape(-1, 4, 2)
        return np.rint(pts, out=pts).astype(np.int32), idx


_GRASS = Polygons(_GRASS_POLYS)
_FIELD = Polygons(_FIELD_POLY)


@functools.cache
def smoothscale_levels() -> np.ndarray:
    """The uint8 level smoothscale gives a flat area of each level when shrinking
    1000x800 to 96x96 (256 entries; 102 -> 100 with pygame-ce's SSE2 filter).  A
    125x100 -> 12x12 shrink has the same fixed-point steps (0x10000 * src // dst)."""
    lut = np.empty(256, np.uint8)
    surf = pygame.Surface((WINDOW_W // 8, WINDOW_H // 8))
    for c in range(256):
        surf.fill((c, c, c))
        lut[c] = pygame.surfarray.pixels3d(pygame.transform.smoothscale(surf, (STATE_W // 8, STATE_H // 8)))[0, 0, 0]
    return lut


def _cover(src: int, n_out: int) -> np.ndarray:
    """(src + 1, n_out): for each pixel edge e of a src-pixel axis, the share of each of
    n_out equal output pixels that [0, e) covers; a span [a, b) covers F[b] - F[a]."""
    step = src / n_out
    return np.clip((np.arange(src + 1)[:, None] - step * np.arange(n_out)[None, :]) / step, 0.0, 1.0)


_COL_COVER = _cover(WINDOW_W, STATE_W)
_ROW_COVER = np.zeros((WINDOW_H + 1, STATE_H - ROAD_ROWS))
_ROW_COVER[BAR_ROWS[0] :] = _cover(BAR_ROWS[1] - BAR_ROWS[0], STATE_H - ROAD_ROWS)  # indexed by surface row


class _CarShape:
    """The local vertices of a Car's fixtures (car.drawlist: 4 wheels, then the hull's 4
    fixtures), concatenated, with the body of each vertex."""

    def __init__(self, car: Any) -> None:
        self.car = car
        self.bodies = list(car.drawlist)
        polys = [(i, np.array(f.shape.vertices, np.float64)) for i, body in enumerate(self.bodies) for f in body.fixtures]
        assert [i for i, _ in polys] == [0, 1, 2, 3, 4, 4, 4, 4], "car_dynamics.Car's drawlist changed"
        self.local_x = np.concatenate([v[:, 0] for _, v in polys])
        self.local_y = np.concatenate([v[:, 1] for _, v in polys])
        self.body_of = np.concatenate([np.full(len(v), i) for i, v in polys])
        ends = np.cumsum([len(v) for _, v in polys]).tolist()
        self.spans = [slice(a, b) for a, b in zip([0] + ends[:-1], ends)]  # each fixture's vertices

    def treads(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """car.draw's grey patch on each wheel whose arc [phase, phase + 1.2] is not all
        in sin > 0: local vertices (4 per patch) and the wheel of each vertex."""
        w, r = cd.WHEEL_W * cd.SIZE, cd.WHEEL_R * cd.SIZE
        xs: list[float] = []
        ys: list[float] = []
        of: list[int] = []
        for i, wheel in enumerate(self.bodies[:4]):
            a1, a2 = wheel.phase, wheel.phase + 1.2
            s1, s2, c1, c2 = math.sin(a1), math.sin(a2), math.cos(a1), math.cos(a2)
            if s1 > 0 and s2 > 0:
                continue
            if s1 > 0:
                c1 = float(np.sign(c1))
            if s2 > 0:
                c2 = float(np.sign(c2))
            xs += (-w, w, w, -w)
            ys += (r * c1, r * c1, r * c2, r * c2)
            of += (i, i, i, i)
        return np.array(xs), np.array(ys), np.array(of, dtype=np.intp)


class StateRenderer:
    """Draws CarRacing's state (96, 96, 3) uint8 from an env's track, car and counters."""

    def __init__(self, supersampling: int) -> None:
        if supersampling not in SUPERSAMPLING:
            raise ValueError(f"supersampling={supersampling!r}; allowed: {list(SUPERSAMPLING)}")
        self.k = int(supersampling)
        self.canvas = np.zeros((ROAD_ROWS * self.k, STATE_W * self.k, 3), np.uint8)
        self.levels = smoothscale_levels()
        self._road_of: Any = None  # the env.road_poly list `_road` was built from
        self._road = Polygons(np.zeros((0, 4, 2)))
        self._road_colors: list[Any] = []
        self._car: _CarShape | None = None
        self._text: dict[str, np.ndarray] = {}
        self._font: Any = None

    def affine(self, zoom: float, angle: float, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        """The map world (x, y) -> supersampled canvas (col, row) in cv2's pixel-centre
        convention: gymnasium's zoom * rot(angle) * (p - car) + (W/2, H/4), flipped
        vertically, scaled 1000x800 -> 96k x 96k."""
        sx, sy = STATE_W * self.k / WINDOW_W, STATE_H * self.k / WINDOW_H
        c, s = math.cos(angle), math.sin(angle)
        m = np.array([[sx * zoom * c, -sx * zoom * s], [-sy * zoom * s, -sy * zoom * c]])
        b = np.array([sx * WINDOW_W / 2, sy * (WINDOW_H - WINDOW_H / 4)]) - m @ np.array([x, y]) - 0.5
        return m, b

    # ------------------------------------------------------------------ the frame

    def render(self, env: Any) -> np.ndarray:
        """The state gymnasium's CarRacing._render('state_pixels') would return now."""
        if self._road_of is not env.road_poly:  # a new track: reset() builds a new list
            self._road_of = env.road_poly
            self._road = Polygons(np.array([poly for poly, _ in env.road_poly], dtype=np.float64))
            # the tiles' own colour arrays: the contact listener repaints a touched tile in place
            self._road_colors = [color for _, color in env.road_poly]
        t = env.t
        zoom = 0.1 * SCALE * max(1 - t, 0) + ZOOM * SCALE * min(t, 1)  # the zoom-in of the first second
        hull = env.car.hull
        px, py = hull.position
        m, b = self.affine(zoom, -hull.angle, px, py)
        canvas = self.canvas
        h, w = canvas.shape[:2]
        fill = cv2.fillPoly
        if _inside_field(m, b, h, w):
            canvas[0] = _color(env.bg_color)
            canvas[1:] = canvas[0]  # a row at a time: numpy broadcasts a 3-vector slowly
        else:  # outside the playfield the surface stays black
            canvas.fill(0)
            field, _ = _FIELD.visible(m, b, h, w)
            if len(field):
                fill(canvas, list(field), _color(env.bg_color), cv2.LINE_8, SHIFT)
        grass, _ = _GRASS.visible(m, b, h, w)
        if len(grass):  # one call: the squares lie apart (fillPoly fills even-odd)
            fill(canvas, list(grass), _color(env.grass_color), cv2.LINE_8, SHIFT)
        road, idx = self._road.visible(m, b, h, w)
        if len(idx):
            colors = self._road_colors  # read now: a touched tile is repainted in place
            # int() truncation, as gymnasium's [int(c) for c in color]
            rgb = np.array([colors[i] for i in idx.tolist()]).astype(np.int64).tolist()
            for pts, color in zip(road, rgb):  # one by one, in order: a later polygon paints over an earlier one
                fill(canvas, [pts], color, cv2.LINE_8, SHIFT)
        self._draw_car(env.car, m, b)
        out = np.empty((STATE_H, STATE_W, 3), np.uint8)
        out[:ROAD_ROWS] = _box_mean(canvas, self.k)
        out[ROAD_ROWS:] = self._bar(env)
        return cv2.LUT(out, self.levels, dst=out)

    def _draw_car(self, car: Any, m: np.ndarray, b: np.ndarray) -> None:
        """car.draw without particles (the state_pixels path): the wheels, each one's grey
        tread patch, then the hull's four fixtures.  Every vertex in one numpy pass: each
        body's pose composed with the canvas map, indexed per vertex."""
        if self._car is None or self._car.car is not car:
            self._car = _CarShape(car)
        shape = self._car
        pose = np.array([(q.c, q.s, *body.position) for body in shape.bodies for q in (body.transform.R,)])  # (5, 4)
        c, s, x, y = pose.T
        (m00, m01), (m10, m11) = m
        comp = np.empty((6, len(c)))  # canvas = m (R v + p) + b with R = [[c, -s], [s, c]], Box2D's own sin/cos
        comp[0], comp[1], comp[2] = m00 * c + m01 * s, m01 * c - m00 * s, m00 * x + m01 * y + b[0]
        comp[3], comp[4], comp[5] = m10 * c + m11 * s, m11 * c - m10 * s, m10 * x + m11 * y + b[1]
        tread_x, tread_y, tread_of = shape.treads()
        lx, ly = np.concatenate([shape.local_x, tread_x]), np.concatenate([shape.local_y, tread_y])
        comp = comp[:, np.concatenate([shape.body_of, tread_of])]
        pts = np.empty((len(lx), 2), np.int32)
        np.rint((comp[0] * lx + comp[1] * ly + comp[2]) * _ONE, out=pts[:, 0], casting="unsafe")
        np.rint((comp[3] * lx + comp[4] * ly + comp[5]) * _ONE, out=pts[:, 1], casting="unsafe")
        n = len(shape.local_x)
        fixtures = [pts[span] for span in shape.spans]  # 4 wheels, then the hull's 4 fixtures
        # The polygons of one fillPoly call must not overlap (it fills even-odd): the wheels
        # are apart, the treads too, and so are the hull's fixtures 1 and 3, and 2 and 4.
        fill, canvas = cv2.fillPoly, self.canvas
        fill(canvas, fixtures[:4], WHEEL_COLOR, cv2.LINE_8, SHIFT)
        if len(tread_of):
            fill(canvas, list(pts[n:].reshape(-1, 4, 2)), cd.WHEEL_WHITE, cv2.LINE_8, SHIFT)
        fill(canvas, fixtures[4::2], HULL_COLOR, cv2.LINE_8, SHIFT)
        fill(canvas, fixtures[5::2], HULL_COLOR, cv2.LINE_8, SHIFT)

    # ------------------------------------------------------------------ the indicator bar

    def _bar(self, env: Any) -> np.ndarray:
        """Rows 84-95: gymnasium's _render_indicators and the reward text, smoothscaled."""
        text = self._text_strip(f"{env.reward:04.0f}")
        rects = _indicator_rects(env.car)
        if not rects:
            return text
        # the rectangles cut the bar into a grid of constant cells, painted in pygame's order
        xs = sorted({0, WINDOW_W, *(r[0] for r in rects), *(r[1] for r in rects)})
        ys = sorted({BAR_ROWS[0], BAR_ROWS[1], *(r[2] for r in rects), *(r[3] for r in rects)})
        xi, yi = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
        grid = np.zeros((len(ys) - 1, 3, len(xs) - 1))
        for x0, x1, y0, y1, color in rects:
            grid[yi[y0] : yi[y1], :, xi[x0] : xi[x1]] = color
        rows = _ROW_COVER[ys[1:]] - _ROW_COVER[ys[:-1]]  # (row cells, 12): the share of each output row
        cols = _COL_COVER[xs[1:]] - _COL_COVER[xs[:-1]]  # (column cells, 96)
        mean = (grid @ cols).reshape(len(ys) - 1, -1)  # (row cells, 3 x 96)
        mean = (rows.T @ mean).reshape(STATE_H - ROAD_ROWS, 3, STATE_W).transpose(0, 2, 1)
        # the text and the indicators lie in separate columns (x < 125 and x >= 125)
        return np.maximum(text, self.levels[np.rint(mean).astype(np.uint8)])

    def _text_strip(self, text: str) -> np.ndarray:
        """The reward text over the black bar, through pygame's own smoothscale (cached)."""
        strip = self._text.get(text)
        if strip is None:
            if self._font is None:
                pygame.font.init()
                self._font = pygame.font.Font(pygame.font.get_default_font(), 42)
            glyphs = self._font.render(text, True, (255, 255, 255), (0, 0, 0))
            rect = glyphs.get_rect()
            rect.center = (60, round(WINDOW_H - WINDOW_H * 2.5 / 40.0))
            surf = pygame.Surface((WINDOW_W, WINDOW_H - int(BAR_TOP)))
            surf.blit(glyphs, (rect.x, rect.y - int(BAR_TOP)))
            small = pygame.transform.smoothscale(surf, (STATE_W, STATE_H - ROAD_ROWS))
            strip = np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(small), (1, 0, 2)))
            if len(self._text) > 1024:
                self._text.clear()
            self._text[text] = strip
        return strip


def _box_mean(canvas: np.ndarray, k: int) -> np.ndarray:
    """The k x k box mean of the canvas (96 x 84 out).  k = 2: one INTER_LINEAR halving,
    which is the exact 2x2 mean (rounded); larger k: repeated halvings, each rounded,
    three times faster than INTER_AREA's generic path here (at most 1 level apart)."""
    while k > 1:
        h, w = canvas.shape[:2]
        canvas = cv2.resize(canvas, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
        k //= 2
    return canvas


def _inside_field(m: np.ndarray, b: np.ndarray, h: int, w: int) -> bool:
    """Whether the whole canvas shows the inside of the playfield (the background
    polygon then covers it: a plain fill)."""
    (m00, m01), (m10, m11) = m
    det = m00 * m11 - m01 * m10
    for u, v in ((-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5)):
        du, dv = u - b[0], v - b[1]
        if abs((m11 * du - m01 * dv) / det) >= PLAYFIELD or abs((m00 * dv - m10 * du) / det) >= PLAYFIELD:
            return False
    return True


def _color(c: Any) -> tuple[int, int, int]:
    return (int(c[0]), int(c[1]), int(c[2]))  # gymnasium: [int(c) for c in color]


# gymnasium's _render_indicators colours: speed, the four ABS sensors, steering, gyro
_SPEED, _STEER, _GYRO = (np.array(c, np.float64)[:, None] for c in ((255, 255, 255), (0, 255, 0), (255, 0, 0)))
_ABS = [np.array(c, np.float64)[:, None] for c in ((0, 0, 255), (0, 0, 255), (51, 0, 255), (51, 0, 255))]


def _indicator_rects(car: Any) -> list[tuple[int, int, int, int, np.ndarray]]:
    """gymnasium's _render_indicators as pixel rectangles [x0, x1) x [y0, y1) of the
    1000x800 surface: pygame.draw.polygon truncates each corner and fills inclusive.
    Colours come as (3, 1) columns, ready for the grid in StateRenderer._bar."""
    s, h, W, H = WINDOW_W / 40.0, WINDOW_H / 40.0, WINDOW_W, WINDOW_H
    out = []

    def add(value: float, xa: float, xb: float, ya: float, yb: float, color: np.ndarray) -> None:
        if abs(value) <= 1e-4:  # render_if_min
            return
        x0, x1 = sorted((int(xa), int(xb)))
        y0, y1 = sorted((int(ya), int(yb)))
        x0, x1 = max(x0, 0), min(x1 + 1, W)
        y0, y1 = max(y0, BAR_ROWS[0]), min(y1 + 1, H)  # clipped to the bar (see the env's docstring)
        if x0 < x1 and y0 < y1:
            out.append((x0, x1, y0, y1, color))

    def vertical(place: float, val: float, value: float, color: np.ndarray) -> None:
        add(value, place * s, (place + 1) * s, H - (h + h * val), H - h, color)

    def horizontal(place: float, val: float, value: float, color: np.ndarray) -> None:
        add(value, place * s, (place + val) * s, H - 4 * h, H - 2 * h, color)

    vx, vy = car.hull.linearVelocity
    speed = float(np.sqrt(np.square(vx) + np.square(vy)))
    vertical(5, 0.02 * speed, speed, _SPEED)
    for i, color in enumerate(_ABS):
        omega = car.wheels[i].omega
        vertical(7 + i, 0.01 * omega, omega, color)
    steer = car.wheels[0].joint.angle
    horizontal(20, -10.0 * steer, steer, _STEER)
    gyro = car.hull.angularVelocity
    horizontal(30, -0.8 * gyro, gyro, _GYRO)
    return out
