"""The built-in example: a credit-card-fraud style tabular pipeline on generated data."""

from pathlib import Path

EXAMPLE_DIR = Path(__file__).parent
