"""prunecxr: how pruning impacts long-tailed multi-label chest X-ray classifiers (paper as code)."""

# Part of every results key (config.Config.key): bump it whenever a change of code changes the
# bits of results (training numerics, data generation), so no stale cache is ever reused.
__version__ = "0.2.0"
