"""The optimization recipes, in the order they run (prune -> distill -> quantize): one entry each."""

from __future__ import annotations

from gates.optimize.base import Recipe
from gates.optimize.distill import DistillRecipe
from gates.optimize.prune import PruneRecipe
from gates.optimize.quantize import QuantizeRecipe

RECIPES: dict[str, Recipe] = {
    "prune": PruneRecipe(),
    "distill": DistillRecipe(),
    "quantize": QuantizeRecipe(),
}
