"""Golden prompt suites, their data expectations, and drift metrics."""
