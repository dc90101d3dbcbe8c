"""Ant morphologies generated from pybullet_data's `mjcf/ant.xml` at run time.

A morphology is a list of damages; a damage shortens (or lengthens) one segment
of one leg by a length scale.  The ant walks toward +x, so the front legs are
the two at +x: front-left is `left_ankle_geom` (+x, +y) and front-right is
`fourth_ankle_geom` (+x, -y).  Scaling a segment scales its capsule's `fromto`
end point and moves the rest of the leg with it (the child body's `pos`), so a
shortened upper leg keeps its lower leg attached.  Generated files go to a cache
directory (`HEBBIAN_ES_CACHE`, default ~/.cache/hebbian_es), never the source tree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from hebbian_es.config import RandomDamageConfig
from hebbian_es.errors import ConfigError

# leg -> segment -> capsule geom name in mjcf/ant.xml
LEG_GEOMS: dict[str, dict[str, str]] = {
    "front_left": {"hip": "aux_1_geom", "upper": "left_leg_geom", "lower": "left_ankle_geom"},
    "back_left": {"hip": "aux_2_geom", "upper": "right_leg_geom", "lower": "right_ankle_geom"},
    "back_right": {"hip": "aux_3_geom", "upper": "back_leg_geom", "lower": "third_ankle_geom"},
    "front_right": {"hip": "aux_4_geom", "upper": "rightback_leg_geom", "lower": "fourth_ankle_geom"},
}
SEGMENTS = ("hip", "upper", "lower")
MAX_SCALE = 2.0  # longer legs than twice the original stop being "the same ant"


@dataclass(frozen=True)
class Damage:
    leg: str
    segment: str
    scale: float  # new length / original length

    def __post_init__(self) -> None:
        if self.leg not in LEG_GEOMS:
            raise ConfigError(f"morphology damage leg={self.leg!r}; allowed: {sorted(LEG_GEOMS)}")
        if self.segment not in SEGMENTS:
            raise ConfigError(f"morphology damage segment={self.segment!r}; allowed: {list(SEGMENTS)}")
        if not 0.0 < float(self.scale) <= MAX_SCALE:
            raise ConfigError(f"morphology damage scale={self.scale}: must be in (0, {MAX_SCALE}]")


@dataclass(frozen=True)
class Morphology:
    name: str
    damages: tuple[Damage, ...] = ()

    @property
    def key(self) -> tuple[tuple[str, str, float], ...]:
        """What the body is, whatever it is called (sorted damages, scale-1 entries dropped)."""
        return tuple(sorted((d.leg, d.segment, round(float(d.scale), 9)) for d in self.damages if d.scale != 1.0))

    def as_kwargs(self) -> list[dict[str, Any]]:
        return [{"leg": d.leg, "segment": d.segment, "scale": float(d.scale)} for d in self.damages]


PRESETS: dict[str, tuple[Damage, ...]] = {
    "standard": (),
    "front_right_short": (Damage("front_right", "lower", 0.25),),
    "front_left_short": (Damage("front_left", "lower", 0.25),),
}


DAMAGE_KEYS = ("leg", "segment", "scale")


def parse_damages(entries: Iterable[Mapping[str, Any]] | None) -> tuple[Damage, ...]:
    """Damages written as [{leg, segment, scale}, ...] (a `morphology.presets` entry, an env's `damages`)."""
    out = []
    for e in entries or ():
        if not isinstance(e, Mapping) or set(e) != set(DAMAGE_KEYS):
            got = sorted(e) if isinstance(e, Mapping) else e
            raise ConfigError(f"morphology damage {got}: give exactly the keys {list(DAMAGE_KEYS)}")
        out.append(Damage(str(e["leg"]), str(e["segment"]), float(e["scale"])))
    return tuple(out)


def resolve(name: str, custom: Mapping[str, Any] | None = None) -> Morphology:
    """A named morphology: a preset, or one defined under `morphology.presets`."""
    custom = {} if custom is None else dict(custom)
    if name in custom:
        return Morphology(name, parse_damages(custom[name]))
    if name in PRESETS:
        return Morphology(name, PRESETS[name])
    raise ConfigError(f"morphology {name!r} is not known; allowed: {sorted(set(PRESETS) | set(custom))} or 'random'")


def base_xml_path() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "mjcf" / "ant.xml"


def cache_dir() -> Path:
    root = os.environ.get("HEBBIAN_ES_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hebbian_es")
    return Path(root) / "morphologies"


def apply_damages(root: ET.Element, damages: Sequence[Damage]) -> None:
    parents = {child: parent for parent in root.iter() for child in parent}
    for d in damages:
        geom_name = LEG_GEOMS[d.leg][d.segment]
        geom = root.find(f".//geom[@name='{geom_name}']")
        if geom is None:  # pragma: no cover - pybullet_data changed
            raise RuntimeError(f"{geom_name} not found in ant.xml")
        v = [float(x) for x in geom.get("fromto", "").split()]
        start, end = np.array(v[:3]), np.array(v[3:])
        new_end = start + (end - start) * float(d.scale)
        geom.set("fromto", " ".join(f"{x:.6g}" for x in (*start, *new_end)))
        body = parents[geom]
        for child in body:  # the rest of the leg hangs off this segment's end
            if child.tag == "body" and child.get("pos"):
                pos = np.array([float(x) for x in child.get("pos").split()])
                child.set("pos", " ".join(f"{x:.6g}" for x in pos * float(d.scale)))


def generate_xml(damages: Sequence[Damage]) -> Path:
    """Write (once) and return the MJCF file of the ant with these damages."""
    tree = ET.parse(base_xml_path())
    apply_damages(tree.getroot(), damages)
    text = ET.tostring(tree.getroot(), encoding="unicode")
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    path = cache_dir() / f"ant_{digest}.xml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ant_", suffix=".xml")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)  # concurrent workers may race: same content either way
    return path


@dataclass(frozen=True)
class RandomDamageSpec:
    """Damage distribution: one leg, one segment, a scale drawn uniformly in [low, high]."""

    legs: tuple[str, ...]
    segments: tuple[str, ...]
    scale_low: float
    scale_high: float

    def __post_init__(self) -> None:
        for leg in self.legs:
            Damage(leg, "lower", 1.0)
        for seg in self.segments:
            Damage("front_left", seg, 1.0)
        if not 0 < self.scale_low <= self.scale_high <= MAX_SCALE:
            raise ConfigError(
                f"morphology.random scale range [{self.scale_low}, {self.scale_high}] must lie in (0, {MAX_SCALE}]"
            )
        if not self.legs or not self.segments:
            raise ConfigError("morphology.random needs at least one leg and one segment")

    @classmethod
    def from_config(cls, cfg: RandomDamageConfig) -> "RandomDamageSpec":
        """From `morphology.random`."""
        return cls(tuple(cfg.legs), tuple(cfg.segments), float(cfg.scale_low), float(cfg.scale_high))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "RandomDamageSpec":
        """From an env's `random_damage` make kwarg (`as_kwargs()`, or any of its keys:
        the others are `morphology.random`'s defaults)."""
        allowed = [f.name for f in dataclasses.fields(RandomDamageConfig)]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ConfigError(f"random_damage keys {unknown} unknown; allowed: {allowed}")
        return cls.from_config(RandomDamageConfig(**kwargs))

    def sample(self, rng: np.random.Generator) -> tuple[Damage, ...]:
        leg = self.legs[int(rng.integers(len(self.legs)))]
        seg = self.segments[int(rng.integers(len(self.segments)))]
        return (Damage(leg, seg, float(rng.uniform(self.scale_low, self.scale_high))),)

    def as_kwargs(self) -> dict[str, Any]:
        return {"legs": list(self.legs), "segments": list(self.segments), "scale_low": self.scale_low, "scale_high": self.scale_high}


class BodyChoice:
    """The body of a morphology env: its fixed damages, plus a random one drawn from each
    reset seed when `random_damage` is given (both ant envs use this)."""

    def __init__(self, damages: Sequence[Mapping[str, Any]] | None, random_damage: Mapping[str, Any] | None) -> None:
        self.fixed = parse_damages(damages)
        self.random = RandomDamageSpec.from_kwargs(random_damage) if random_damage else None
        self.damages: tuple[Damage, ...] = self.fixed

    def redraw(self, seed: int | None) -> bool:
        """This episode's body; True when it differs from the last one (the env must rebuild)."""
        if self.random is None:
            return False
        damages = self.fixed + self.random.sample(np.random.default_rng(seed))
        changed, self.damages = damages != self.damages, damages
        return changed

    def info(self) -> list[tuple[str, str, float]]:
        return [(d.leg, d.segment, d.scale) for d in self.damages]
