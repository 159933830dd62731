"""tladvisor: advise on, run and measure transfer-learning strategies for a labelled data set.

Importing the package is cheap: torch and the model libraries are imported inside the functions
that need them, so the advisor and the CLI's --help stay fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
