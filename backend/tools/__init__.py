"""Command-line tools of the guide (``tbml ui``, ``tbml check-store``), installed with the package."""
