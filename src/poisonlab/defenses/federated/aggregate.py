"""The maths of robust federated aggregation, as small pure numpy functions.

Each function is named after the rule or equation of its paper and cites it; the classes of this
package (:mod:`.krum`, :mod:`.bulyan`, ...) only do protocol around them (validation, non-finite
clients, state across rounds). ``U`` is always an ``(n_clients, n_params)`` float array of finite
client updates and ``w`` a weight vector summing to 1.

Memory and time: every function works column block by column block where a per-coordinate
temporary would otherwise be as large as ``U`` (blocks of about 4 M values, 32 MiB), and pairwise
geometry goes through the ``n x n`` Gram matrix of the updates centred on their coordinate-wise
median (centring keeps the round-off of ``|a|^2 + |b|^2 - 2 a.b`` small when one update is huge).
For 100 clients of 1 M parameters, ``U`` itself is 800 MB in float64; the rules add at most one
array of that size (NNM's mixed updates, FoolsGold's histories), and the Gram matrix costs
``n^2 d = 10^10`` multiply-adds (a few seconds with BLAS).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ...exceptions import AssumptionError, DataError

#: Values per column block of the block-wise loops (32 MiB of float64).
_BLOCK = 1 << 22


def _column_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, _BLOCK // max(n_rows, 1))
    for start in range(0, n_cols, step):
        yield slice(start, min(start + step, n_cols))


def _row_sq_norms(U: np.ndarray) -> np.ndarray:
    """``|u_i|^2`` for every row, without a temporary as large as ``U``."""
    return np.einsum("ij,ij->i", U, U)


def _sq_dists_to(U: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``|u_i - v|^2`` for every row, block by block."""
    out = np.zeros(U.shape[0])
    for sl in _column_blocks(*U.shape):
        B = U[:, sl] - v[sl]
        out += np.einsum("ij,ij->i", B, B)
    return out


def centred_gram(U: np.ndarray) -> np.ndarray:
    """The Gram matrix ``(U - m)(U - m)^T`` of the updates centred on their coordinate-wise
    median ``m`` (pairwise distances and convex combinations do not depend on ``m``; centring on a
    robust point keeps the round-off small when an attacker sends a huge update)."""
    n = U.shape[0]
    G = np.zeros((n, n))
    for sl in _column_blocks(*U.shape):
        B = U[:, sl]
        B = B - np.median(B, axis=0)
        G += B @ B.T
    return G


def pairwise_sq_distances(U: np.ndarray, *, gram: np.ndarray | None = None) -> np.ndarray:
    """``D[i, j] = |u_i - u_j|^2`` (the distances of Blanchard et al. 2017, Krum's score), from the
    centred Gram matrix: ``D = diag(G) 1^T + 1 diag(G)^T - 2 G``; symmetric, zero diagonal,
    never negative."""
    G = centred_gram(U) if gram is None else gram
    sq = np.diag(G)
    D = sq[:, None] + sq[None, :] - 2.0 * G
    D = 0.5 * (D + D.T)
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    return D


# --- means and coordinate-wise rules ------------------------------------------------------------

def weighted_mean(U: np.ndarray, w: np.ndarray) -> np.ndarray:
    """FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
    Decentralized Data", Algorithm 1): ``sum_k w_k u_k`` with ``sum_k w_k = 1``."""
    return np.asarray(w, dtype=np.float64) @ U


def _kept_counts(B: np.ndarray, S: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per client (row of ``B``), at how many columns its value is among rows ``a .. b-1`` of the
    column-sorted ``S`` (the values an order-statistic rule keeps). Values tied at the edge of the
    kept range share the kept slots equally, so the counts are exact without ties, independent
    of the sort's order with them, and always sum to ``(b - a)`` per column."""
    lo, hi = S[a], S[b - 1]
    if a + 1 == b:  # one kept row: the clients equal to it share it
        eq = B == lo
        return eq.astype(np.float64) @ (1.0 / eq.sum(axis=0))
    kept = S[a:b]
    eq_lo, eq_hi = B == lo, (B == hi) & (lo != hi)
    inside = np.count_nonzero((B > lo) & (B < hi), axis=1).astype(np.float64)
    share_lo = (kept == lo).sum(axis=0) / eq_lo.sum(axis=0)
    share_hi = (kept == hi).sum(axis=0) / np.maximum(eq_hi.sum(axis=0), 1)
    return inside + eq_lo.astype(np.float64) @ share_lo + eq_hi.astype(np.float64) @ share_hi


def coordinate_median(U: np.ndarray, *, return_weights: bool = False):
    """Coordinate-wise median (Yin, Chen, Ramchandran & Bartlett 2018, "Byzantine-Robust
    Distributed Learning: Towards Optimal Statistical Rates", Definition 1): the median of each
    parameter over clients (the mean of the two middle values for an even number of clients).

    With ``return_weights``, also the share of each client: the fraction of coordinates at which
    its value was the median (a half for each of the two middle values when n is even; clients
    tied at a middle value share it), so that the shares sum to 1.
    """
    n, d = U.shape
    lo, hi = (n - 1) // 2, n // 2
    out = np.empty(d)
    counts = np.zeros(n)
    for sl in _column_blocks(n, d):
        B = U[:, sl]
        S = np.sort(B, axis=0)  # a full sort of n values per column beats argpartition + gathers
        out[sl] = 0.5 * (S[lo] + S[hi])
        if return_weights:
            counts += (_kept_counts(B, S, lo, lo + 1) if lo == hi
                       else 0.5 * (_kept_counts(B, S, lo, lo + 1) + _kept_counts(B, S, hi, hi + 1)))
    return (out, counts / d) if return_weights else out


def trimmed_mean(U: np.ndarray, f: int, *, return_weights: bool = False):
    """Coordinate-wise trimmed mean (Yin et al. 2018, Definition 2): per coordinate, drop the ``f``
    largest and ``f`` smallest values and average the ``n - 2f`` others.

    With ``return_weights``, also each client's share: the fraction of coordinates at which its
    value was kept (clients tied at the edge of the kept range share its slots), divided by
    ``n - 2f`` (the shares sum to 1).

    Raises AssumptionError unless ``2f < n``.
    """
    n, d = U.shape
    f = int(f)
    if 2 * f >= n:
        raise AssumptionError(f"trimmed mean needs 2f < n; got n={n}, f={f}")
    keep = n - 2 * f
    out = np.empty(d)
    counts = np.zeros(n)
    for sl in _column_blocks(n, d):
        B = U[:, sl]
        if f == 0:
            out[sl] = B.mean(axis=0)
            counts += B.shape[1]
            continue
        S = np.sort(B, axis=0)
        out[sl] = S[f:n - f].mean(axis=0)
        if return_weights:
            counts += _kept_counts(B, S, f, n - f)
    return (out, counts / (keep * d)) if return_weights else out


def closest_to_median_mean(U: np.ndarray, beta: int, *, return_weights: bool = False):
    """Per coordinate, the mean of the ``beta`` values closest to the coordinate's median (the
    second stage of Bulyan, El Mhamdi et al. 2018, Algorithm 1 step 2; "mean around median",
    Xie et al. 2018).

    With ``return_weights``, also each client's share of the kept values (summing to 1).
    """
    n, d = U.shape
    beta = int(beta)
    if not 1 <= beta <= n:
        raise AssumptionError(f"closest-to-median mean needs 1 <= beta <= n; got n={n}, beta={beta}")
    out = np.empty(d)
    counts = np.zeros(n)
    for sl in _column_blocks(n, d):
        B = U[:, sl]
        dev = np.abs(B - np.median(B, axis=0))
        idx = np.argpartition(dev, beta - 1, axis=0)[:beta] if beta < n else np.broadcast_to(
            np.arange(n)[:, None], B.shape)
        out[sl] = np.take_along_axis(B, idx, axis=0).mean(axis=0)
        if return_weights:
            counts += np.bincount(np.asarray(idx).ravel(), minlength=n)
    return (out, counts / (beta * d)) if return_weights else out


# --- Krum, Multi-Krum, Bulyan ---------------------------------------------------------------------

def _nearest_sums(D: np.ndarray, k: int) -> np.ndarray:
    """For each row, the sum of its ``k`` smallest off-diagonal entries."""
    Dx = D.copy()
    np.fill_diagonal(Dx, np.inf)
    return np.partition(Dx, k - 1, axis=1)[:, :k].sum(axis=1)


def _best_first(scores: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Indices by increasing score; exact ties (Krum with one neighbour always ties a mutually
    nearest pair) go to the update with the smaller total squared distance to all the others, so
    that the choice follows the updates, not their position."""
    return np.lexsort((D.sum(axis=1), scores))


def krum_scores(U: np.ndarray, f: int, *, sq_dists: np.ndarray | None = None) -> np.ndarray:
    """Krum scores (Blanchard, El Mhamdi, Guerraoui & Stainer 2017, "Machine Learning with
    Adversaries: Byzantine Tolerant Gradient Descent", Section 4):
    ``s(i) = sum_{i -> j} |u_i - u_j|^2`` over the ``n - f - 2`` nearest neighbours ``j != i``.

    Raises AssumptionError unless ``n > 2f + 2``.
    """
    n = U.shape[0]
    if n <= 2 * f + 2:
        raise AssumptionError(f"Krum needs n > 2f + 2; got n={n}, f={f}")
    D = pairwise_sq_distances(U) if sq_dists is None else sq_dists
    return _nearest_sums(D, n - f - 2)


def krum(U: np.ndarray, f: int, *, sq_dists: np.ndarray | None = None) -> int:
    """Krum's choice (Blanchard et al. 2017, Section 4): the index of the update with the lowest
    score, ``argmin_i s(i)`` (exact ties to the smaller total squared distance to all others)."""
    D = pairwise_sq_distances(U) if sq_dists is None else sq_dists
    return int(_best_first(krum_scores(U, f, sq_dists=D), D)[0])


def multi_krum(U: np.ndarray, f: int, m: int, *, sq_dists: np.ndarray | None = None) -> np.ndarray:
    """Multi-Krum's choice (Blanchard et al. 2017, Section 5): the indices of the ``m`` updates
    with the lowest Krum scores, best first (scores computed once, on all ``n`` updates).

    Raises AssumptionError unless ``n > 2f + 2`` and ``1 <= m <= n - f``.
    """
    n = U.shape[0]
    D = pairwise_sq_distances(U) if sq_dists is None else sq_dists
    scores = krum_scores(U, f, sq_dists=D)
    if not 1 <= m <= n - f:
        raise AssumptionError(f"Multi-Krum needs 1 <= m <= n - f; got n={n}, f={f}, m={m}")
    return _best_first(scores, D)[:m]


def bulyan_selection(U: np.ndarray, f: int, *, sq_dists: np.ndarray | None = None) -> np.ndarray:
    """Bulyan's selection set (El Mhamdi, Guerraoui & Rouault 2018, "The Hidden Vulnerability of
    Distributed Learning in Byzantium", Algorithm 1 step 1): ``theta = n - 2f`` indices chosen by
    iterated Krum, each time among the updates not chosen yet (in the order chosen).

    Krum's neighbour count on ``r`` remaining updates is ``r - f - 2``; the paper leaves the last
    steps (``r <= f + 2``, where that count would be below 1) undefined, and there the score is the
    distance to the single nearest remaining neighbour. Exact ties (a mutually nearest pair when
    one neighbour counts) go to the update with the smaller total squared distance to the others
    remaining.

    Raises AssumptionError unless ``n >= 4f + 3``.
    """
    n = U.shape[0]
    if n < 4 * f + 3:
        raise AssumptionError(f"Bulyan needs n >= 4f + 3; got n={n}, f={f}")
    D = pairwise_sq_distances(U) if sq_dists is None else sq_dists
    remaining = np.arange(n)
    chosen = []
    for _ in range(n - 2 * f):
        r = len(remaining)
        if r == 1:
            best = 0
        else:
            sub = D[np.ix_(remaining, remaining)]
            best = int(_best_first(_nearest_sums(sub, max(r - f - 2, 1)), sub)[0])
        chosen.append(int(remaining[best]))
        remaining = np.delete(remaining, best)
    return np.asarray(chosen, dtype=np.int64)


def bulyan(U: np.ndarray, f: int, *, return_weights: bool = False):
    """Bulyan (El Mhamdi et al. 2018, Algorithm 1): select ``theta = n - 2f`` updates by iterated
    Krum (:func:`bulyan_selection`), then per coordinate average the ``beta = theta - 2f`` selected
    values closest to their median (:func:`closest_to_median_mean`).

    With ``return_weights``, also each client's share of the kept values (0 for clients never
    selected; summing to 1).

    Raises AssumptionError unless ``n >= 4f + 3``.
    """
    sel = bulyan_selection(U, f)
    theta = len(sel)
    agg, share = closest_to_median_mean(U[sel], theta - 2 * f, return_weights=True)
    if not return_weights:
        return agg
    weights = np.zeros(U.shape[0])
    weights[sel] = share
    return agg, weights


# --- geometric median (RFA) -----------------------------------------------------------------------

def geometric_median(U: np.ndarray, w: np.ndarray | None = None, *, nu: float = 1e-6, max_iter: int = 200,
                     tol: float = 1e-6, return_weights: bool = False):
    """Weighted geometric median by the smoothed Weiszfeld algorithm (RFA: Pillutla, Kakade &
    Harchaoui 2022, "Robust Aggregation for Federated Learning", Algorithm 3):

    ``z <- sum_i beta_i u_i / sum_i beta_i`` with ``beta_i = w_i / max(nu, |z - u_i|)``, from the
    weighted mean, until a step moves ``z`` by at most ``tol`` times the median distance from ``z``
    to the updates, or ``max_iter`` iterations. (RFA stops on the relative change of the objective
    ``sum_i w_i |z - u_i|``; a single huge update dominates that objective and stops it early, far
    from the median, so the step is measured against a robust scale instead.) ``z`` stays a convex
    combination ``c^T U``, so each iteration costs ``O(n^2)`` on the Gram matrix and ``U`` is
    touched only twice.

    With ``return_weights``, returns ``(z, c, n_iter)``: ``c`` the final convex weights of the
    clients (``beta / sum beta``) and the number of iterations run.
    """
    n = U.shape[0]
    w = np.full(n, 1.0 / n) if w is None else np.asarray(w, dtype=np.float64)
    G = centred_gram(U)
    diagG = np.diag(G)

    def dists(c: np.ndarray) -> np.ndarray:
        Gc = G @ c
        return np.sqrt(np.maximum(c @ Gc - 2.0 * Gc + diagG, 0.0))

    c = w / w.sum()
    d = dists(c)
    n_iter = 0
    for n_iter in range(1, int(max_iter) + 1):
        beta = w / np.maximum(nu, d)
        c_new = beta / beta.sum()
        step = c_new - c
        moved = float(np.sqrt(max(step @ G @ step, 0.0)))
        c = c_new
        d = dists(c)
        if moved <= tol * float(np.median(d)):
            break
    z = c @ U
    return (z, c, n_iter) if return_weights else z


# --- clipping ------------------------------------------------------------------------------------

def centered_clipping(U: np.ndarray, w: np.ndarray, v0: np.ndarray, *, tau: float, n_iter: int,
                      return_weights: bool = False):
    """Centred clipping (Karimireddy, He & Jaggi 2021, "Learning from History for Byzantine Robust
    Optimization", eq. (CC)): ``L = n_iter`` times,
    ``v <- v + sum_i w_i clip_tau(u_i - v)`` with ``clip_tau(x) = x min(1, tau / |x|)``, from
    ``v0`` (the previous round's aggregate; the paper weights clients equally, ``w_i = 1/n``).

    The result is ``s v0 + a^T U``; with ``return_weights`` also ``a / sum(a)``, each client's
    share of the part that comes from this round's updates (a clipped-away client gets ~0).
    """
    n = U.shape[0]
    v = np.asarray(v0, dtype=np.float64).copy()
    a = np.zeros(n)
    for _ in range(int(n_iter)):
        dist = np.sqrt(_sq_dists_to(U, v))
        with np.errstate(divide="ignore"):
            c = np.where(dist > tau, tau / np.where(dist > 0, dist, 1.0), 1.0)
        wc = w * c
        v = (1.0 - wc.sum()) * v + wc @ U
        a = (1.0 - wc.sum()) * a + wc
    if not return_weights:
        return v
    return v, (a / a.sum() if a.sum() > 0 else np.full(n, 1.0 / n))


def norm_clip(U: np.ndarray, w: np.ndarray, max_norm: float, *, noise_std: float = 0.0,
              rng: np.random.Generator | None = None, return_weights: bool = False):
    """Norm thresholding with weak differential privacy (Sun, Kairouz, Suresh & McMahan 2019,
    "Can You Really Backdoor Federated Learning?", Section 4):
    ``sum_i w_i u_i / max(1, |u_i| / M) + N(0, sigma^2 I)``.

    With ``return_weights``, also each client's share of the clipped sum before noise,
    ``w_i min(1, M / |u_i|)`` normalised to 1.
    """
    norms = np.sqrt(_row_sq_norms(U))
    scale = 1.0 / np.maximum(1.0, norms / float(max_norm))
    wc = np.asarray(w, dtype=np.float64) * scale
    out = wc @ U
    if noise_std > 0:
        if rng is None:
            raise DataError("norm_clip with noise_std > 0 needs a numpy Generator rng")
        out = out + rng.normal(0.0, float(noise_std), size=out.shape)
    return (out, wc / wc.sum()) if return_weights else out


# --- trust-based rules ---------------------------------------------------------------------------

def fltrust(U: np.ndarray, g0: np.ndarray, *, return_weights: bool = False):
    """FLTrust (Cao, Fang, Liu & Gong 2021, "FLTrust: Byzantine-robust Federated Learning via
    Trust Bootstrapping", Algorithm 2): trust scores ``TS_i = ReLU(cos(g_i, g_0))`` against the
    server's update ``g_0`` computed on its root data; each ``g_i`` rescaled to ``|g_0|``; the
    aggregate is ``sum_i TS_i |g_0| / |g_i| g_i / sum_i TS_i``.

    A zero update has cosine 0 (no trust). When every trust score is 0 the paper's ratio is 0/0:
    this function then returns a zero update (the global model does not move) and all-zero
    weights. With ``return_weights``, returns ``(aggregate, TS / sum TS, TS)``.
    """
    g0 = np.asarray(g0, dtype=np.float64)
    n0 = float(np.sqrt(g0 @ g0))
    if n0 == 0:
        raise DataError("FLTrust's server_update has norm 0: it cannot say which direction to trust")
    norms = np.sqrt(_row_sq_norms(U))
    safe = np.where(norms > 0, norms, 1.0)
    cos = np.where(norms > 0, (U @ g0) / (safe * n0), 0.0)
    ts = np.maximum(cos, 0.0)
    total = ts.sum()
    if total <= 0:
        out, share = np.zeros(U.shape[1]), np.zeros(U.shape[0])
    else:
        share = ts / total
        out = (share * n0 / safe) @ U
    return (out, share, ts) if return_weights else out


#: Below this, ``1 - cos`` of two histories is float round-off (identical directions).
_COS_ROUNDOFF = 1e-10


def foolsgold_weights(H: np.ndarray, kappa: float = 1.0) -> np.ndarray:
    """FoolsGold's learning-rate vector (Fung, Yoon & Beschastnikh 2020, "The Limitations of
    Federated Learning in Sybil Settings", Algorithm 1) from the clients' aggregated historical
    updates ``H`` (one row per client):

    1. ``cs_ij`` = cosine similarity of ``H_i`` and ``H_j`` (``i != j``); ``v_i = max_j cs_ij``;
    2. pardoning: ``cs_ij *= v_i / v_j`` where ``v_j > v_i``;
    3. ``alpha_i = 1 - max_j cs_ij``, clipped to [0, 1], divided by its maximum, 1 -> 0.99;
    4. ``alpha_i = kappa (ln(alpha_i / (1 - alpha_i)) + 0.5)``, clipped to [0, 1].

    A zero history has similarity 0 with everyone; ``1 - max cs`` below 1e-10 is round-off and
    counts as 0. When every ``alpha`` is 0 after step 3 (each client has an exact twin) FoolsGold
    cannot rank them: all-zero weights are returned and the caller decides.
    """
    n = H.shape[0]
    if n == 1:
        return np.ones(1)
    G = H @ H.T
    norms = np.sqrt(np.maximum(np.diag(G), 0.0))
    safe = np.where(norms > 0, norms, 1.0)
    cs = G / np.outer(safe, safe)
    cs[norms == 0, :] = 0.0
    cs[:, norms == 0] = 0.0
    np.fill_diagonal(cs, -np.inf)
    v = cs.max(axis=1)
    pardon = v[None, :] > v[:, None]  # pardon[i, j]: v_j > v_i
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pardon, v[:, None] / np.where(v[None, :] != 0, v[None, :], 1.0), 1.0)
    cs = np.where(pardon, cs * ratio, cs)
    np.fill_diagonal(cs, -np.inf)
    alpha = np.clip(1.0 - cs.max(axis=1), 0.0, 1.0)
    alpha[alpha < _COS_ROUNDOFF] = 0.0  # identical histories: 1 - cos is round-off, not signal
    top = alpha.max()
    if top <= 0:
        return np.zeros(n)
    alpha = alpha / top
    alpha[alpha == 1.0] = 0.99
    with np.errstate(divide="ignore"):
        logit = np.log(alpha / (1.0 - alpha)) + 0.5
    return np.clip(float(kappa) * logit, 0.0, 1.0)


# --- nearest-neighbour mixing ---------------------------------------------------------------------

def nnm(U: np.ndarray, f: int, *, sq_dists: np.ndarray | None = None, return_mixing: bool = False):
    """Nearest-neighbour mixing (Allouah, Farhadkhani, Guerraoui, Gupta, Pinot & Stephan 2023,
    "Fixing by Mixing: A Recipe for Optimal Byzantine ML under Heterogeneity", Algorithm 1):
    each ``u_i`` is replaced by the mean of its ``n - f`` nearest neighbours, itself included:
    ``y_i = (1 / (n - f)) sum_{j in N_i} u_j``, i.e. ``Y = M U`` with ``M`` row-stochastic.

    With ``return_mixing``, returns ``(Y, M)``. Raises AssumptionError unless ``n > 2f``.
    """
    n = U.shape[0]
    if n <= 2 * f:
        raise AssumptionError(f"NNM needs n > 2f; got n={n}, f={f}")
    k = n - f
    D = pairwise_sq_distances(U) if sq_dists is None else sq_dists.copy()
    np.fill_diagonal(D, -1.0)  # each update is its own nearest neighbour, even among duplicates
    idx = np.argpartition(D, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), (n, n))
    M = np.zeros((n, n))
    np.put_along_axis(M, np.asarray(idx), 1.0 / k, axis=1)
    Y = M @ U
    return (Y, M) if return_mixing else Y
