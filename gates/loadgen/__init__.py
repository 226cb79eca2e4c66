"""Load generation with locust against the served arms, and its statistics."""
