"""The judge: gates and statistics to a verdict. Pure functions, no I/O."""
