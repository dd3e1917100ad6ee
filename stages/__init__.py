"""Thin command-line entry points, one per pipeline step (``python -m stages.<name>``)."""
