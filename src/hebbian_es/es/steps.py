"""Update steps: how an ES moves its centre along its gradient estimate, chosen by `optimizer.step`.

Every step is an ascent step (fitness is maximised) on the centre x with the estimate g of
the fitness gradient and the generation's learning rate lr (which decays in the ES state):

- sgd (the paper's): x <- x + lr * g, in float64, exactly the arithmetic of OpenAI-ES before
  the steps were components (g = direction / divisor; lr / divisor is taken first);
- momentum: torch.optim.SGD(momentum=m): v <- m * v + g, x <- x + lr * v (v = g at the first step);
- adam: torch.optim.Adam(betas=(beta1, beta2), eps) on the centre, g as its (negated) gradient;
- clipup (Toklu et al. 2020): v <- m * v + lr * g / |g|; v <- v * max_speed / |v| if |v| > max_speed;
  x <- x + v.  max_speed null: 2 * lr (their rule alpha = max_speed / 2).

A step is a pure function of (centre, estimate, lr, its state): its state is a dict of plain
tensors (momentum buffer, Adam's moments and step count, ClipUp's velocity), a new dict every
generation, so an ES state is immutable and a checkpoint (torch.load(weights_only=True))
restores it bit for bit.  The torch optimisers are built afresh for each update around a copy
of the centre, their state put in before and read out after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import torch

from hebbian_es.errors import ConfigError

StepState = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Gradient:
    """The ES estimate of the fitness gradient at the centre: direction / divisor.

    Kept as a pair so the paper's SGD step computes lr / divisor first, as it always did
    (bit-identical centres); every other step uses `value()`."""

    direction: torch.Tensor  # float64 (D,)
    divisor: float = 1.0

    def value(self) -> torch.Tensor:
        return self.direction if self.divisor == 1.0 else self.direction / self.divisor

    def minus(self, other: torch.Tensor) -> "Gradient":
        return Gradient(self.value() - other.to(torch.float64), 1.0)


class Step(Protocol):
    name: str

    def init(self, center: torch.Tensor) -> StepState: ...

    def apply(self, center: torch.Tensor, grad: Gradient, lr: float, state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, StepState]: ...


@dataclass(frozen=True)
class SGD:
    """x <- x + lr * g (the paper's step; no state)."""

    name: str = "sgd"

    def init(self, center: torch.Tensor) -> StepState:
        return {}

    def apply(self, center: torch.Tensor, grad: Gradient, lr: float, state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, StepState]:
        step = lr / grad.divisor
        return (center.to(torch.float64) + step * grad.direction).to(torch.float32), {}


def _torch_step(optimizer_class: type, settings: dict[str, Any], center: torch.Tensor, grad: Gradient, state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, StepState]:
    """One step of a torch optimiser on a float64 copy of the centre, with `state` put in first."""
    param = torch.nn.Parameter(center.detach().to(torch.float64).clone())
    param.grad = grad.value().to(torch.float64).clone()
    # maximize: fitness goes up; foreach=False: the single-tensor kernels, whatever torch's default
    opt = optimizer_class([param], maximize=True, foreach=False, **settings)
    if state:
        opt.state[param] = {k: v.clone() for k, v in state.items()}
    opt.step()
    new_state = {k: v.detach().clone() for k, v in opt.state[param].items() if isinstance(v, torch.Tensor)}
    return param.detach().to(torch.float32), new_state


@dataclass(frozen=True)
class Momentum:
    """torch.optim.SGD with momentum m: v <- m * v + g, x <- x + lr * v."""

    momentum: float = 0.9
    name: str = "momentum"

    def init(self, center: torch.Tensor) -> StepState:
        return {}  # torch starts the buffer at the first gradient

    def apply(self, center: torch.Tensor, grad: Gradient, lr: float, state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, StepState]:
        return _torch_step(torch.optim.SGD, {"lr": lr, "momentum": self.momentum}, center, grad, state)


@dataclass(frozen=True)
class Adam:
    """torch.optim.Adam on the centre with the ES gradient estimate (Palm et al. 2021; Salimans et al. 2017's code)."""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name: str = "adam"

    def init(self, center: torch.Tensor) -> StepState:
        return {}  # torch initialises step, exp_avg and exp_avg_sq at the first step

    def apply(self, center: torch.Tensor, grad: Gradient, lr: float, state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, StepState]:
        return _torch_step(torch.optim.Adam, {"lr": lr, "betas": (self.beta1, self.beta2), "eps": self.eps}, center, grad, state)


@dataclass(frozen=True)
class ClipUp:
    """Normalised gradient with heavy-ball momentum, the velocity's norm clipped at max_speed (Toklu et al. 2020)."""

    momentum: float = 0.9
    max_speed: float | None = None  # None: 2 * lr
    name: str = "clipup"

    def init(self, center: torch.Tensor) -> StepState:
        return {"velocity": torch.zeros(center.numel(), dtype=torch.float64)}

    def apply(self, center: torch.Tensor, grad: Gradient, lr: float, state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, StepState]:
        g = grad.value().to(torch.float64)
        norm = float(torch.linalg.vector_norm(g))
        velocity = self.momentum * state["velocity"]
        if norm > 0:  # a zero estimate (every fitness equal) adds nothing
            velocity = velocity + (lr / norm) * g
        max_speed = 2.0 * lr if self.max_speed is None else self.max_speed
        speed = float(torch.linalg.vector_norm(velocity))
        if speed > max_speed:
            velocity = velocity * (max_speed / speed)
        return (center.to(torch.float64) + velocity).to(torch.float32), {"velocity": velocity}


STEPS = ("sgd", "momentum", "adam", "clipup")


def _unit_interval(key: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"optimizer.{key}={value}: must be in [0, 1)")


def make_step(name: str, *, momentum: float, beta1: float, beta2: float, eps: float, max_speed: float | None) -> Step:
    """The step `optimizer.step` names, its settings checked (one line naming the key)."""
    if name == "sgd":
        return SGD()
    if name == "momentum":
        _unit_interval("momentum", momentum)
        return Momentum(float(momentum))
    if name == "adam":
        _unit_interval("beta1", beta1)
        _unit_interval("beta2", beta2)
        if not eps > 0:
            raise ConfigError(f"optimizer.eps={eps}: must be > 0")
        return Adam(float(beta1), float(beta2), float(eps))
    if name == "clipup":
        _unit_interval("momentum", momentum)
        if max_speed is not None and not max_speed > 0:
            raise ConfigError(f"optimizer.max_speed={max_speed}: must be > 0 (or null: 2 x lr)")
        return ClipUp(float(momentum), None if max_speed is None else float(max_speed))
    raise ConfigError(f"optimizer.step={name!r} is not known; allowed: {list(STEPS)}")
