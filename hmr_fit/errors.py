"""Typed exceptions raised by the library. Only ``hmr_fit.cli`` turns them into exit codes and messages."""


class HmrFitError(Exception):
    """Base class: a problem the user can act on. The message is one line: what, where, what to do next."""


class InputError(HmrFitError):
    """An input (image, video, keypoint file, argument value) is missing, unreadable or malformed."""


class ModelFileError(HmrFitError):
    """A body-model or weights file is missing, truncated, or has the wrong keys or shapes."""


class NoPersonError(InputError):
    """No usable person was found in an input."""


class FitDiverged(HmrFitError):
    """An optimization produced non-finite values for every problem it was given."""


class ConfigError(HmrFitError):
    """A configuration value or override is invalid."""
