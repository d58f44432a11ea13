"""The exceptions poisonlab raises.

Every error a user can cause is one of these, so that callers can catch poisonlab's complaints
without catching programming errors. Each subclasses the built-in exception a Python user would
expect (``ValueError`` for bad values), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class PoisonlabError(Exception):
    """Base class of every poisonlab error."""


class InvalidParameterError(PoisonlabError, ValueError, TypeError):
    """A hyperparameter is out of its allowed range or of the wrong type.

    The message names the parameter, what it must be, and what it got.
    """


class DataError(PoisonlabError, ValueError):
    """Input data is malformed: wrong shape, NaN, unknown label, corrupt or truncated file."""


class ChecksumError(DataError):
    """A file's digest differs from the published one: it is corrupt, truncated or another file."""


class NotFittedError(PoisonlabError, AttributeError):
    """A detector, model or aggregator was used before ``fit``."""


class AssumptionError(PoisonlabError, ValueError):
    """A method's stated assumption does not hold for this input (e.g. Krum with n <= 2f + 2).

    poisonlab refuses rather than silently clamping to something the paper does not define.
    """


class PoisonlabWarning(UserWarning):
    """Something works but probably not as the user intends (e.g. a trigger word that is
    already common in the corpus, so it cannot act as a trigger)."""
