"""L-VN, the Lite Virtual Network."""

__version__ = "0.1.0"
