"""Model optimization recipes (NVIDIA Model Optimizer behind lazy imports)."""
