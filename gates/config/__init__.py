"""Typed pipeline config, validated at load with file/key/line errors."""

from gates.config.parse import load_pipeline, parse_pipeline
from gates.config.schema import QUANT_FORMATS, Pipeline

__all__ = ["QUANT_FORMATS", "Pipeline", "load_pipeline", "parse_pipeline"]
