"""archsim's version (the package's, and part of every result's identity)."""

__version__ = "0.2.0"
