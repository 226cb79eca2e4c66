"""Triton Inference Server: process lifecycle, model repository, client."""
