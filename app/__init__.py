"""promptserve: many prompt-tuned text classifiers served from one frozen transformer backbone."""

__version__ = "0.1.0"
