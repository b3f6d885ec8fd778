"""Errors the stack reports to a person: one line saying what failed and the fix."""

from __future__ import annotations


class StackError(RuntimeError):
    """A service could not be set up, started or stopped; the message names the fix."""


class ArtefactUnavailable(StackError):
    """A service's binary cannot be obtained on this machine (e.g. the registry refuses it).

    The stack runs without that service and says so; it is not a crash.
    """
