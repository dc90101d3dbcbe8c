"""hebbian_es's Hydra launcher plugin (Hydra only accepts launchers under `hydra_plugins`).

Kept import-light: Hydra imports every `hydra_plugins` module on each start.
"""
