"""``gates search``: the cheapest configuration that passes every gate, and the cost–quality front.

``space`` turns a pipeline's ``search:`` section into validated candidate pipelines (exit 2 before
anything is built); ``halving`` is the pure stopping rule over rungs of measurement; ``run``
measures candidates with the pipeline's own gate runs; ``report`` writes what was found.
"""
