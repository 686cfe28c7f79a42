"""The error taxonomy, after KerasTuner's.

- `UserError`: the user asked for something impossible (a bad file, flag or path). One line,
  exit code 2, no traceback; nothing is written.
- `TrialFailed`: one trial could not finish (NaN loss, out of memory, a broken parameter set).
  It is recorded with its reason and the search goes on.
- `TrialPruned`: the pruner stopped a poor trial early; it counts as finished.
- `SearchStopped`: a fatal condition that ends the whole search (too many failures in a row).
"""

from __future__ import annotations


class TuneError(Exception):
    """Base of every error `tune` raises on purpose."""


class UserError(TuneError):
    """A problem with the user's input, told in one line."""


class TrialFailed(TuneError):
    """A trial that could not finish; the search records it and goes on."""


class TrialPruned(TuneError):
    """A trial stopped early by the pruner."""


class SearchStopped(TuneError):
    """A fatal condition that stops the search (not the user's input)."""
