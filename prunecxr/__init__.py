"""prunecxr: how pruning impacts long-tailed multi-label chest X-ray classifiers (paper as code)."""

__version__ = "0.1.0"
