"""The Hydra config tree, shipped inside the package as `hebbian_es.conf`."""

from hebbian_es.gym_configs import register

register()
