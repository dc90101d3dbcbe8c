"""hebbian_es: meta-learn synapse-specific Hebbian plasticity with evolution strategies."""

__version__ = "0.1.0"
