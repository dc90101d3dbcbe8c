"""`env=<any gymnasium id>` composes conf/env/generic.yaml with that id.

A ConfigSource that answers for the `env` group only, and only for ids in the
gymnasium registry that have no config file of their own, so `env=carracing`
still means conf/env/carracing.yaml and `env=Pendulum-v1` means the generic
template.  It works in multirun sweeps too (`-m env=CartPole-v1,Acrobot-v1`).

The source is registered when Hydra imports `hebbian_es.conf` (conf/__init__.py calls
`hebbian_es.config.register()`) and reached through `hydra.searchpath` in train.yaml: no
hydra_plugins scan needed, so it works from a checkout, an editable install and a wheel
alike.  It is config machinery (it answers with config nodes and imports no env code),
so it lives with the schemas, in the bottom layer.
"""

from __future__ import annotations

from typing import List, Optional

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigResult, ConfigSource
from omegaconf import OmegaConf

GROUP = "env"
SCHEME = "hebbian-es-gymnasium"


def _registered(env_id: str) -> bool:
    try:
        import gymnasium
    except ImportError:  # pragma: no cover
        return False
    return env_id in gymnasium.registry


class GymnasiumEnvConfigSource(ConfigSource):
    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _env_id(self, config_path: str) -> Optional[str]:
        path = self._normalize_file_name(config_path.rstrip("/"))
        if not path.startswith(GROUP + "/") or not path.endswith(".yaml"):
            return None
        env_id = path[len(GROUP) + 1 : -len(".yaml")]
        return env_id if env_id and _registered(env_id) else None

    def load_config(self, config_path: str) -> ConfigResult:
        env_id = self._env_id(config_path)
        assert env_id is not None
        node = OmegaConf.create({"defaults": ["generic", "_self_"], "id": env_id, "name": env_id})
        return ConfigResult(
            config=node,
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header={"package": None},
        )

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return config_path.rstrip("/") == GROUP

    def is_config(self, config_path: str) -> bool:
        return self._env_id(config_path) is not None

    def exists(self, config_path: str) -> bool:
        return self.is_group(config_path) or self.is_config(config_path)

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> List[str]:
        return []  # the registry is large; only the shipped env configs are listed


def register() -> None:
    from hydra.core.plugins import Plugins  # noqa: F401  (initialises the registry first)
    from hydra._internal.sources_registry import SourcesRegistry

    SourcesRegistry.instance().register(GymnasiumEnvConfigSource)
