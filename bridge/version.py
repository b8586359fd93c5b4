"""The version of the bridge, on the ground floor so any module can name it."""

__version__ = "0.1.0"
