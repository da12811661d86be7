"""L-VN, the Lite Virtual Network: its version and the library's exception."""

__version__ = "0.1.0"


class LvnError(Exception):
    """An error with a message that can be shown to a user as is."""
