"""The one place the version is written: setup.py/pyproject read it, the package imports it."""

__version__ = "0.2.0"
