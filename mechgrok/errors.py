"""The one exception type the CLI turns into a clean one-line error."""


class MechgrokError(Exception):
    """Bad input or a broken run directory: the message names the problem."""
