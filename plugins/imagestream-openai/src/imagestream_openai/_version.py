"""The plugin version, in one place (also sent in the User-Agent header)."""

__version__ = "0.2.0"
