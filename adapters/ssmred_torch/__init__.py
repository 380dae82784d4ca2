"""PyTorch adapter for ssmred (LRU layers <-> StateSpace, in-training CompreSSM reduction)."""

from ssmred._require import require

require("torch")
