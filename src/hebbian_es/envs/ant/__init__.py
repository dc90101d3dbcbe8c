"""The pybullet quadruped with bodies generated at run time.

Importing this package registers both gymnasium ids: `hebbian_es.envs.ant:MorphAnt-v0`
(AntBulletEnv-v0 with a chosen body; bullet.py) and `hebbian_es.envs.ant:FastAnt-v0`
(the same observations and rewards with batched pybullet queries; fast.py).
"""

from hebbian_es.envs.console import native_output_silenced

with native_output_silenced():  # importing pybullet prints its build time
    from hebbian_es.envs.ant import bullet, fast  # noqa: F401  (registers the ids)
