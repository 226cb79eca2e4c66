"""Canary deployment targets and promotion."""
