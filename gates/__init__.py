"""gates: a promotion gate for optimized LLMs."""

__version__ = "0.1.0"
