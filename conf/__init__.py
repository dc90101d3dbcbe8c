"""The Hydra config tree, shipped inside the package as `hebbian_es.conf`."""

from omegaconf import OmegaConf

from hebbian_es.distributed import rank_suffix
from hebbian_es.gym_configs import register

register()
# '' on rank 0, '.rank<k>' on other ranks of a distributed run: per-rank log files.
OmegaConf.register_new_resolver("hebbian_es.rank_suffix", rank_suffix, replace=True)
