"""mlgraph: an open metadata service for machine-learning platforms."""

__version__ = "0.1.0"
