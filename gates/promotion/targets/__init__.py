"""Where a canary runs: ``local`` (our weighted router before a Triton) or ``kserve``."""
