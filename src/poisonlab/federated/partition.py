"""Split one training set among federated clients: IID, Dirichlet label skew, classes per client.

Every function is pure and seeded: it takes the labels ``y`` (only their number for
:func:`iid`), returns one sorted ``int64`` index array per client, never modifies ``y``, and the
same ``random_state`` (None, an int or a numpy Generator) gives the same split.

* :func:`iid` -- a random permutation cut into ``n_clients`` parts of sizes differing by at most 1
  (the setting of the Byzantine-robustness papers: Blanchard et al. 2017, Yin et al. 2018);
* :func:`dirichlet` -- label skew: for each class, the fractions of its samples given to the
  clients are drawn from ``Dir(alpha, ..., alpha)`` (Hsu, Qi & Brown 2019, "Measuring the Effects
  of Non-Identical Data Distribution"); small ``alpha`` gives clients a few dominant classes,
  large ``alpha`` approaches IID;
* :func:`shards` -- each client holds exactly ``classes_per_client`` classes (McMahan et al. 2017's
  pathological non-IID split; one digit per client in FoolsGold's sybil experiments, Fung et al.
  2020).

Examples
--------
>>> import numpy as np
>>> from poisonlab.federated import partition_clients
>>> y = np.repeat(np.arange(4), 10)
>>> parts = partition_clients(y, 4, "shards", classes_per_client=1, random_state=0)
>>> sorted(len(set(y[p])) for p in parts)
[1, 1, 1, 1]
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._validation import check_labels, check_random_state, check_scalar
from ..exceptions import AssumptionError, DataError, InvalidParameterError

#: The schemes :func:`partition_clients` knows.
SCHEMES = ("iid", "dirichlet", "shards")


def _check_clients(n_clients: Any, n_samples: int) -> int:
    check_scalar(n_clients, "n_clients", (numbers.Integral, np.integer), low=1)
    n_clients = int(n_clients)
    if n_clients > n_samples:
        raise InvalidParameterError(f"n_clients must be at most the {n_samples} samples (every client "
                                    f"needs one); got {n_clients}")
    return n_clients


def _labels(y: Any) -> np.ndarray:
    y = check_labels(y)
    if y.size == 0:
        raise DataError("y holds no sample to partition")
    return y


def _check_nonempty(parts: list[np.ndarray], scheme: str) -> list[np.ndarray]:
    empty = [k for k, p in enumerate(parts) if p.size == 0]
    if empty:
        raise DataError(f"{scheme} partition left client(s) {empty[:5]} without samples; "
                        "use fewer clients")
    return parts


def iid(y: Any, n_clients: int, *, random_state: Any = None) -> list[np.ndarray]:
    """IID split: a random permutation of the samples cut into ``n_clients`` near-equal parts.

    Parameters
    ----------
    y : array-like of int, shape (n_samples,)
        The labels (only their number is used).
    n_clients : int
        At least 1 and at most ``n_samples``.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    list of ndarray of int64
        Sorted sample indices per client; sizes differ by at most 1 and cover every sample once.

    Examples
    --------
    >>> [len(p) for p in iid(np.zeros(10, dtype=int), 3, random_state=0)]
    [4, 3, 3]
    """
    y = _labels(y)
    n_clients = _check_clients(n_clients, len(y))
    rng = check_random_state(random_state)
    perm = rng.permutation(len(y))
    return _check_nonempty([np.sort(p).astype(np.int64) for p in np.array_split(perm, n_clients)], "iid")


def dirichlet(y: Any, n_clients: int, *, alpha: float = 0.5, min_size: int = 1, max_tries: int = 100,
              random_state: Any = None) -> list[np.ndarray]:
    """Label-skewed split: per class, the share of each client ~ ``Dir(alpha)``.

    For each class ``c`` the samples of ``c`` are shuffled and cut at the cumulative proportions
    ``p ~ Dir(alpha * 1_n)`` (Hsu, Qi & Brown 2019). The whole draw is repeated until every client
    holds at least ``min_size`` samples, at most ``max_tries`` times.

    Parameters
    ----------
    y : array-like of int, shape (n_samples,)
    n_clients : int
    alpha : float > 0, default=0.5
        Concentration: 0.1 gives most clients one or two classes; 100 is close to IID.
    min_size : int >= 1, default=1
        The fewest samples a client may hold.
    max_tries : int >= 1, default=100
        Draws before giving up with an :class:`~poisonlab.exceptions.AssumptionError`.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    list of ndarray of int64
        Sorted sample indices per client, covering every sample once.

    Examples
    --------
    >>> y = np.repeat(np.arange(3), 20)
    >>> parts = dirichlet(y, 3, alpha=0.5, random_state=0)
    >>> sum(len(p) for p in parts), min(len(p) for p in parts) >= 1
    (60, True)
    """
    y = _labels(y)
    n_clients = _check_clients(n_clients, len(y))
    check_scalar(alpha, "alpha", numbers.Real, low=0.0, low_inclusive=False)
    check_scalar(min_size, "min_size", (numbers.Integral, np.integer), low=1)
    check_scalar(max_tries, "max_tries", (numbers.Integral, np.integer), low=1)
    if min_size * n_clients > len(y):
        raise InvalidParameterError(f"min_size={min_size} for {n_clients} clients needs "
                                    f"{min_size * n_clients} samples; there are {len(y)}")
    rng = check_random_state(random_state)
    by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    sizes = None
    for _ in range(int(max_tries)):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for idx in by_class:
            idx = rng.permutation(idx)
            p = rng.dirichlet(np.full(n_clients, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * len(idx)).astype(np.int64)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(chunks)).astype(np.int64) for chunks in parts]
        sizes = [len(p) for p in out]
        if min(sizes) >= min_size:
            return out
    raise AssumptionError(f"dirichlet partition: after {max_tries} draws with alpha={alpha} some client "
                          f"still held fewer than min_size={min_size} samples (last smallest: "
                          f"{min(sizes)}); raise alpha, lower min_size or use fewer clients")


def shards(y: Any, n_clients: int, *, classes_per_client: int = 2, random_state: Any = None) -> list[np.ndarray]:
    """Pathological non-IID split: every client holds exactly ``classes_per_client`` classes.

    Classes are dealt to clients so that each client gets ``classes_per_client`` distinct classes
    and every class is held by as equal a number of clients as possible (the least-used classes
    first, ties broken at random); each class's samples are then shuffled and cut into equal
    parts among the clients holding it. With ``n_clients * classes_per_client`` below the number
    of classes, the samples of the classes no client draws are left out of the partition.

    Parameters
    ----------
    y : array-like of int, shape (n_samples,)
    n_clients : int
    classes_per_client : int, default=2
        At least 1 and at most the number of distinct classes in ``y``.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    list of ndarray of int64
        Sorted sample indices per client.

    Examples
    --------
    >>> y = np.repeat(np.arange(10), 6)
    >>> parts = shards(y, 10, classes_per_client=2, random_state=0)
    >>> {len(np.unique(y[p])) for p in parts}
    {2}
    """
    y = _labels(y)
    n_clients = _check_clients(n_clients, len(y))
    classes = np.unique(y)
    check_scalar(classes_per_client, "classes_per_client", (numbers.Integral, np.integer), low=1,
                 high=len(classes))
    c = int(classes_per_client)
    rng = check_random_state(random_state)
    used = np.zeros(len(classes), dtype=np.int64)
    holders: list[list[int]] = [[] for _ in classes]
    for k in range(n_clients):
        keys = used + rng.random(len(classes))          # least used first, random among equals
        for j in np.argsort(keys, kind="stable")[:c]:
            holders[j].append(k)
            used[j] += 1
    parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    for j, cls in enumerate(classes):
        if not holders[j]:
            continue
        idx = rng.permutation(np.flatnonzero(y == cls))
        if len(idx) < len(holders[j]):
            raise DataError(f"shards partition: class {int(cls)} has {len(idx)} samples for "
                            f"{len(holders[j])} clients holding it; use fewer clients or classes")
        for k, chunk in zip(holders[j], np.array_split(idx, len(holders[j]))):
            parts[k].append(chunk)
    out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
    return _check_nonempty(out, "shards")


def partition_clients(y: Any, n_clients: int, scheme: str = "iid", *, alpha: float = 0.5,
                      classes_per_client: int = 2, min_size: int = 1,
                      random_state: Any = None) -> list[np.ndarray]:
    """Split a training set among ``n_clients`` federated clients.

    Parameters
    ----------
    y : array-like of int, shape (n_samples,)
        Training labels.
    n_clients : int
        At least 1 and at most the number of samples.
    scheme : {"iid", "dirichlet", "shards"}, default="iid"
        :func:`iid`, :func:`dirichlet` (label skew, ``alpha``, ``min_size``) or :func:`shards`
        (``classes_per_client`` classes per client).
    alpha : float, default=0.5
        Dirichlet concentration (``scheme="dirichlet"``).
    classes_per_client : int, default=2
        Classes per client (``scheme="shards"``).
    min_size : int, default=1
        Fewest samples per client (``scheme="dirichlet"``).
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    list of ndarray of int64
        One sorted index array into ``y`` per client; every client holds at least one sample.

    Examples
    --------
    >>> y = np.arange(12) % 3
    >>> [len(p) for p in partition_clients(y, 3, random_state=0)]
    [4, 4, 4]
    """
    if scheme == "iid":
        return iid(y, n_clients, random_state=random_state)
    if scheme == "dirichlet":
        return dirichlet(y, n_clients, alpha=alpha, min_size=min_size, random_state=random_state)
    if scheme == "shards":
        return shards(y, n_clients, classes_per_client=classes_per_client, random_state=random_state)
    raise InvalidParameterError(f"scheme must be one of {SCHEMES}; got {scheme!r}")


__all__ = ["SCHEMES", "dirichlet", "iid", "partition_clients", "shards"]
