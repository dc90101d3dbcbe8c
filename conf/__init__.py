"""The Hydra config tree, shipped inside the package as `hebbian_es.conf`.

Importing it (Hydra does, before composing) registers the schemas every file starts
from, the `hebbian_es.rank_suffix` resolver and the `env=<gymnasium id>` source."""

from hebbian_es.config import register

register()
