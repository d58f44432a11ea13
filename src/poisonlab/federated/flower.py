"""The Flower adapter: poisonlab's aggregators and update attacks inside a real Flower federation.

Two pieces, for the two sides of a red-team exercise on a Flower (``flwr`` 1.42) deployment or
simulation:

* :class:`PoisonlabStrategy` -- a ``flwr.serverapp.strategy.FedAvg`` whose ``aggregate_train``
  runs any poisonlab aggregator (``"multi_krum"``, ``"median"``, ``"fltrust"``, ...) on the
  clients' updates (each reply's arrays minus the global model the round started from), and
  records per round which nodes it excluded or down-weighted (``strategy.history``);
* :func:`malicious_client_app` -- wraps an honest Flower client so that the nodes of the chosen
  partitions send a poisonlab update attack's malicious update instead of their honest one.

Between them sit two pure numpy helpers, :func:`flatten_arrays` and :func:`unflatten_arrays`,
which turn a model's named arrays (a Flower ``ArrayRecord``, a torch ``state_dict`` or a dict of
arrays) into the flat ``(n_params,)`` vector poisonlab's aggregators and attacks work on, and back
with the same keys, shapes and dtypes.

Flower is an optional dependency (``pip install 'poisonlab[flower]'``): this module imports
without it, ``flwr`` is imported only when a strategy or a client app is built, and
``PoisonlabStrategy`` is created on first access (a class that subclasses Flower's ``FedAvg``
cannot exist before Flower is imported).

Examples
--------
The flat view a poisonlab aggregator sees, and the way back (no Flower needed):

>>> import numpy as np
>>> from poisonlab.federated.flower import flatten_arrays, unflatten_arrays
>>> arrays = {"w": np.ones((2, 2), dtype=np.float32), "steps": np.array(3)}
>>> vector, spec = flatten_arrays(arrays)
>>> vector.tolist(), spec.n_params
([1.0, 1.0, 1.0, 1.0, 3.0], 5)
>>> back = unflatten_arrays(vector + 0.5, spec)
>>> back["w"].dtype.name, back["w"][0, 0].item(), back["steps"].dtype.name
('float32', 1.5, 'int64')

A red-team federation: Multi-Krum on the server, two sign-flipping nodes among seven (the
honest ``train`` function is the user's own Flower training code):

>>> from flwr.app import ArrayRecord  # doctest: +SKIP
>>> from flwr.clientapp import ClientApp  # doctest: +SKIP
>>> from flwr.serverapp import ServerApp  # doctest: +SKIP
>>> from flwr.simulation import run_simulation  # doctest: +SKIP
>>> from poisonlab import registry  # doctest: +SKIP
>>> from poisonlab.federated.flower import PoisonlabStrategy, malicious_client_app  # doctest: +SKIP
>>> honest = ClientApp()  # doctest: +SKIP
>>> honest.train()(train)  # doctest: +SKIP
>>> attack = registry.create("attack", "sign_flip", scale=10.0)  # doctest: +SKIP
>>> client_app = malicious_client_app(honest, attack, malicious_partitions={0, 1})  # doctest: +SKIP
>>> strategy = PoisonlabStrategy(registry.create("aggregator", "multi_krum", f=2),
...                              fraction_evaluate=0.0)  # doctest: +SKIP
>>> server_app = ServerApp()  # doctest: +SKIP
>>> @server_app.main()
... def main(grid, context):
...     strategy.start(grid=grid, initial_arrays=ArrayRecord(model.state_dict()),
...                    num_rounds=5)  # doctest: +SKIP
>>> run_simulation(server_app, client_app, num_supernodes=7)  # doctest: +SKIP
>>> sorted(len(r.excluded) for r in strategy.history)  # doctest: +SKIP
[2, 2, 2, 2, 2]
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..base import BaseAggregator, BaseUpdateAttack
from ..exceptions import DataError, InvalidParameterError

__all__ = [
    "ArraySpec",
    "PoisonlabStrategy",
    "RoundRecord",
    "flatten_arrays",
    "malicious_client_app",
    "unflatten_arrays",
]

#: What the strategy adds to each round's MetricRecord.
EXCLUDED_KEY = "poisonlab-excluded"
KEPT_KEY = "poisonlab-kept"
#: The node-config key Flower's simulation (and the Flower examples) use for a node's partition.
PARTITION_KEY = "partition-id"
NUM_PARTITIONS_KEY = "num-partitions"

_INSTALL_HINT = "the Flower adapter needs flwr: pip install 'poisonlab[flower]' (flwr[simulation]>=1.42,<1.43)"


def _import_flwr() -> None:
    try:
        import flwr  # noqa: F401
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc


# --- flat vectors <-> named arrays -------------------------------------------------------------

@dataclass(frozen=True)
class ArraySpec:
    """Names, shapes and dtypes of a model's arrays, in order: how to undo :func:`flatten_arrays`.

    Attributes
    ----------
    keys : tuple of str
    shapes : tuple of tuple of int
    dtypes : tuple of numpy.dtype
    """

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    @property
    def n_params(self) -> int:
        """Length of the flat vector."""
        return int(sum(self.sizes))


def _to_numpy(value: Any, key: str) -> np.ndarray:
    """One named array as numpy: a Flower ``Array`` (``.numpy()``), a torch tensor or array-like."""
    try:
        if isinstance(value, np.ndarray):
            return value
        if hasattr(value, "detach"):  # a torch tensor
            return value.detach().cpu().numpy()
        if hasattr(value, "numpy"):  # a Flower Array
            return np.asarray(value.numpy())
        return np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - a client's bytes can fail to decode in many ways
        raise DataError(f"array {key!r} cannot be read as a numpy array: {exc}") from exc


def _numeric(arr: np.ndarray, key: str) -> None:
    if arr.dtype.kind not in "biuf":
        raise DataError(f"array {key!r} has dtype {arr.dtype}; only bool, integer and float arrays "
                        "can be flattened into an update")


def flatten_arrays(arrays: Mapping[str, Any], spec: ArraySpec | None = None) -> tuple[np.ndarray, ArraySpec]:
    """Concatenate named arrays into one float64 vector, in key order.

    Parameters
    ----------
    arrays : mapping of str to array
        A Flower ``ArrayRecord``, a torch ``state_dict`` or a dict of numpy arrays.
    spec : ArraySpec, optional
        The layout to follow (e.g. the global model's): ``arrays`` must then hold exactly the
        keys of ``spec`` (in any order) with the same shapes; dtypes may differ. Without it, the
        layout is read from ``arrays``.

    Returns
    -------
    vector : ndarray of float64, shape (n_params,)
    spec : ArraySpec
        The layout of ``vector`` (``spec`` itself when given).

    Raises
    ------
    DataError
        When an array cannot be decoded, is not numeric, or does not match ``spec``.
    """
    if not isinstance(arrays, Mapping):
        raise DataError(f"arrays must be a mapping of names to arrays (an ArrayRecord, a "
                        f"state_dict, a dict); got {type(arrays).__name__}")
    if spec is None:
        if len(arrays) == 0:
            raise DataError("arrays holds no array: nothing to flatten")
        parts = {str(k): _to_numpy(v, str(k)) for k, v in arrays.items()}
        for k, a in parts.items():
            _numeric(a, k)
        spec = ArraySpec(tuple(parts), tuple(tuple(int(d) for d in a.shape) for a in parts.values()),
                         tuple(a.dtype for a in parts.values()))
    else:
        keys = set(map(str, arrays.keys()))
        if keys != set(spec.keys):
            missing = sorted(set(spec.keys) - keys)
            extra = sorted(keys - set(spec.keys))
            raise DataError(f"arrays do not match the model's layout: missing {missing}, "
                            f"unexpected {extra}")
        parts = {}
        for k, shape in zip(spec.keys, spec.shapes):
            a = _to_numpy(arrays[k], k)
            _numeric(a, k)
            if tuple(a.shape) != shape:
                raise DataError(f"array {k!r} has shape {tuple(a.shape)}; the model's is {shape}")
            parts[k] = a
    vector = (np.concatenate([parts[k].astype(np.float64).ravel() for k in spec.keys])
              if spec.keys else np.zeros(0))
    return vector, spec


def unflatten_arrays(vector: Any, spec: ArraySpec) -> dict[str, np.ndarray]:
    """Split a flat vector back into named arrays with the keys, shapes and dtypes of ``spec``.

    Float arrays are cast (float32 models stay float32); integer and boolean arrays (e.g. a
    BatchNorm's ``num_batches_tracked``) are rounded to the nearest value first.

    Raises
    ------
    DataError
        When ``vector`` has the wrong length, or a value does not fit its array's dtype (an
        overflow to infinity, a non-finite integer).
    """
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] != spec.n_params:
        raise DataError(f"vector has shape {v.shape}; the layout holds {spec.n_params} parameters")
    out: dict[str, np.ndarray] = {}
    start = 0
    for key, shape, dtype, size in zip(spec.keys, spec.shapes, spec.dtypes, spec.sizes):
        chunk = v[start:start + size].reshape(shape)
        start += size
        if dtype.kind == "f":
            with np.errstate(over="ignore"):
                arr = chunk.astype(dtype)
            if np.isfinite(chunk).all() and not np.isfinite(arr).all():
                raise DataError(f"array {key!r} overflows {dtype}: a value of magnitude "
                                f"{np.abs(chunk).max():.3g} does not fit")
        else:
            if not np.isfinite(chunk).all():
                raise DataError(f"array {key!r} ({dtype}) would receive a NaN or infinite value")
            rounded = np.rint(chunk)
            if dtype.kind == "b":
                arr = rounded != 0
            else:
                info = np.iinfo(dtype)
                if rounded.size and (rounded.min() < info.min or rounded.max() > info.max):
                    raise DataError(f"array {key!r} overflows {dtype}")
                arr = rounded.astype(dtype)
        out[key] = np.asarray(arr, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
    return out


def _record(arrays: Mapping[str, np.ndarray]) -> Any:
    """A Flower ArrayRecord of numpy arrays, in the same key order."""
    from flwr.app import Array, ArrayRecord

    return ArrayRecord({k: Array(np.asarray(v, order="C")) for k, v in arrays.items()})


def _single_array_record(content: Any, what: str) -> tuple[str, Any]:
    records = content.array_records
    if len(records) != 1:
        raise DataError(f"{what} holds {len(records)} ArrayRecords; the adapter expects exactly one")
    return next(iter(records.items()))


# --- the server side ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RoundRecord:
    """What :class:`PoisonlabStrategy` decided in one training round.

    Attributes
    ----------
    server_round : int
    node_ids : tuple of int
        The nodes whose train replies arrived without an error, in the order aggregated.
    num_examples : tuple of float
        What each node reported under the strategy's ``weighted_by_key`` (a non-finite or
        negative report counts as 0, which excludes the node).
    weights : tuple of float
        The effective weight the aggregator gave each node (``aggregator.weights_``; sums to 1).
    excluded : tuple of int
        Node ids whose update did not reach the global model (``aggregator.excluded_``).
    malformed : tuple of int
        Node ids whose arrays could not be read or did not match the global model's keys and
        shapes (they are excluded too).
    n_failures : int
        Replies that carried an error instead of arrays.
    """

    server_round: int
    node_ids: tuple[int, ...]
    num_examples: tuple[float, ...]
    weights: tuple[float, ...]
    excluded: tuple[int, ...]
    malformed: tuple[int, ...] = ()
    n_failures: int = 0

    @property
    def nominal_weights(self) -> tuple[float, ...]:
        """The weights plain FedAvg would have used (``num_examples`` normalised)."""
        total = float(sum(self.num_examples))
        return tuple(float(n) / total if total > 0 else 0.0 for n in self.num_examples)

    @property
    def down_weighted(self) -> tuple[int, ...]:
        """Nodes kept but given less weight than FedAvg would have given them."""
        return tuple(node for node, w, w0 in zip(self.node_ids, self.weights, self.nominal_weights)
                     if 0.0 < w < w0 * (1.0 - 1e-9))


def _resolve_aggregator(aggregator: Any) -> BaseAggregator:
    if isinstance(aggregator, str):
        from .. import registry

        aggregator = registry.create("aggregator", aggregator)
    if not isinstance(aggregator, BaseAggregator):
        raise InvalidParameterError(f"aggregator must be a poisonlab aggregator (a BaseAggregator, "
                                    f"e.g. registry.create('aggregator', 'multi_krum', f=2)) or its "
                                    f"registry name; got {type(aggregator).__name__}")
    return aggregator


class _StrategyMixin:
    """The protocol work of :class:`PoisonlabStrategy`, kept apart from Flower's class so that it
    is defined (and readable) without flwr installed."""

    #: Context the adapter can give an aggregator: ``server_update`` from ``server_update_fn``,
    #: ``client_ids`` from the replies' node ids (stable across rounds).
    SUPPLIES = ("server_update", "client_ids")

    def _init_poisonlab(self, aggregator: Any, server_update_fn: Callable | None) -> None:
        agg = _resolve_aggregator(aggregator)
        name = type(agg).__name__
        unsupported = [k for k in agg.needs if k not in self.SUPPLIES]
        if unsupported:
            raise InvalidParameterError(f"{name} needs {unsupported}, which the Flower adapter "
                                        f"cannot supply (it supplies {list(self.SUPPLIES)})")
        if "server_update" in agg.needs and server_update_fn is None:
            raise InvalidParameterError(
                f"{name} needs a server_update (the server's own update on its root data set, "
                f"as in FLTrust): pass server_update_fn=f, where f(global_arrays: ArrayRecord) "
                f"returns that update (an ArrayRecord, a dict of arrays or a flat vector)")
        if server_update_fn is not None and not callable(server_update_fn):
            raise InvalidParameterError(f"server_update_fn must be callable; got "
                                        f"{type(server_update_fn).__name__}")
        self.aggregator = agg
        self.server_update_fn = server_update_fn
        self.history: list[RoundRecord] = []
        self._global: Any = None
        self._global_round: int | None = None

    def _remember_global(self, server_round: int, arrays: Any) -> None:
        if server_round == 1:  # a new federation: forget the last run's rounds and state
            self.history = []
            self.aggregator.reset()
        self._global = arrays
        self._global_round = server_round

    def _read_reply(self, content: Any, spec: ArraySpec) -> tuple[np.ndarray, float]:
        """A reply's flat arrays (in the global layout) and its sample count (0 when negative or
        non-finite); DataError when the reply is not one ArrayRecord and one MetricRecord holding
        a single number under ``weighted_by_key``, or its arrays do not fit the model."""
        if len(content.metric_records) != 1:
            raise DataError(f"a train reply holds {len(content.metric_records)} MetricRecords; "
                            "expected exactly one")
        metrics = next(iter(content.metric_records.values()))
        value = metrics[self.weighted_by_key] if self.weighted_by_key in metrics else None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise DataError(f"a train reply's {self.weighted_by_key!r} is {value!r}, not a number")
        w = float(value)
        _, record = _single_array_record(content, "a train reply")
        vec, _ = flatten_arrays(record, spec)
        return vec, (w if np.isfinite(w) and w > 0 else 0.0)

    def _client_metrics(self, kept: list) -> Any:
        """Flower's metric aggregation over the kept replies (their metric keys may disagree:
        a malicious node can send anything, and must not stop the round with it)."""
        from flwr.app import MetricRecord

        if not kept:
            return MetricRecord()
        try:
            return self.train_metrics_aggr_fn(kept, self.weighted_by_key)
        except (TypeError, ValueError, KeyError) as exc:
            from logging import WARNING

            from flwr.supercore import log

            log(WARNING, "poisonlab: the kept clients' train metrics could not be aggregated (%s); "
                "reporting the exclusion counts only", exc)
            return MetricRecord()

    def _aggregate_valid(self, server_round: int, valid: list, n_failures: int):
        if self._global is None or self._global_round != server_round:
            raise DataError(f"aggregate_train for round {server_round} without configure_train for "
                            f"that round: the strategy does not know the global model the clients "
                            f"started from")
        g_vec, spec = flatten_arrays(self._global)
        n = len(valid)
        U = np.empty((n, spec.n_params))
        num_examples = np.zeros(n)
        node_ids: list[int] = []
        malformed: list[int] = []
        for i, msg in enumerate(valid):
            node_ids.append(int(msg.metadata.src_node_id))
            try:
                vec, num_examples[i] = self._read_reply(msg.content, spec)
                U[i] = vec - g_vec
            except DataError:
                U[i] = np.nan  # the aggregator's contract excludes non-finite rows
                num_examples[i] = 0.0
                malformed.append(node_ids[-1])
        context: dict[str, Any] = {}
        agg = self.aggregator
        if "server_update" in agg.needs:
            server = self.server_update_fn(self._global)
            if isinstance(server, Mapping):
                server, _ = flatten_arrays(server, spec)
            server = np.asarray(server, dtype=np.float64)
            if server.shape != (spec.n_params,):
                raise DataError(f"server_update_fn returned shape {server.shape}; the model has "
                                f"{spec.n_params} parameters")
            context["server_update"] = server
        if "client_ids" in agg.accepts:
            context["client_ids"] = np.asarray(node_ids)
        delta = agg.aggregate(U, weights=num_examples, **context)
        new_global = unflatten_arrays(g_vec + delta, spec)
        excluded = np.asarray(agg.excluded_, dtype=bool)
        self.history.append(RoundRecord(
            server_round=int(server_round),
            node_ids=tuple(node_ids),
            num_examples=tuple(float(x) for x in num_examples),
            weights=tuple(float(x) for x in agg.weights_),
            excluded=tuple(nid for nid, ex in zip(node_ids, excluded) if ex),
            malformed=tuple(malformed),
            n_failures=int(n_failures),
        ))
        metrics = self._client_metrics([msg.content for msg, ex in zip(valid, excluded) if not ex])
        metrics[EXCLUDED_KEY] = int(excluded.sum())
        metrics[KEPT_KEY] = int(n - excluded.sum())
        return _record(new_global), metrics


@functools.cache
def _strategy_class() -> type:
    _import_flwr()
    from flwr.serverapp.strategy import FedAvg
    from flwr.supercore import log
    from logging import INFO

    class PoisonlabStrategy(_StrategyMixin, FedAvg):
        """A Flower strategy that aggregates client updates with a poisonlab aggregator.

        A ``flwr.serverapp.strategy.FedAvg`` (sampling, messages, evaluation and ``start`` are
        Flower's) whose ``aggregate_train`` does, each round:

        1. read each reply's ArrayRecord and flatten it (:func:`flatten_arrays`) in the layout of
           the global model sent in ``configure_train``; the client's update is the difference;
        2. call ``aggregator.aggregate(updates, weights=num_examples, **context)``;
        3. add the aggregate to the global model and return it as an ArrayRecord with the same
           keys, shapes and dtypes, with the train metrics averaged over the clients the
           aggregator kept, plus ``"poisonlab-excluded"`` and ``"poisonlab-kept"`` (counts);
        4. append a :class:`RoundRecord` to ``history`` (which node ids were excluded, the
           effective weights, malformed replies).

        Parameters
        ----------
        aggregator : BaseAggregator or str
            The poisonlab aggregation rule (an instance, or a registry name for default
            parameters). It is used for the whole run; a run starting at round 1 resets it.
        server_update_fn : callable, optional
            ``f(global_arrays: ArrayRecord) -> update`` (an ArrayRecord, a dict of arrays or a
            flat vector): the server's own update on its clean root data set, for aggregators
            that need ``server_update`` (FLTrust). Required by those, refused by none.
        **fedavg_params
            Flower's ``FedAvg`` parameters (``fraction_train``, ``fraction_evaluate``,
            ``min_train_nodes``, ``min_available_nodes``, ``weighted_by_key``, ...).

        Attributes
        ----------
        aggregator : BaseAggregator
        history : list of RoundRecord
            One record per aggregated training round of the current run.

        Notes
        -----
        Threat model: up to the aggregator's tolerated number of nodes are malicious and send
        any arrays and any ``num-examples`` they like; the server and the other nodes are
        honest. A reply that is not one ArrayRecord and one MetricRecord with a number under
        ``weighted_by_key``, or whose arrays do not decode or do not match the global model's
        keys and shapes, is excluded and recorded in ``malformed`` (Flower's own strategies stop
        the round on such a reply); so is an update holding a NaN or an infinity
        (``excluded``); a non-finite or negative ``num-examples`` counts as 0 (excluded). Plain
        FedAvg weights by ``num-examples``, so a node inflating its count gains weight: robust
        rules that ignore weights (the median, Krum) do not have that weakness.

        When the aggregator's assumption fails (Krum with ``n <= 2f + 2`` because nodes
        dropped out), it raises and the round -- and the Flower run -- stops, rather than
        aggregating outside what the method guarantees. Node ids identify clients across
        rounds (the ``client_ids`` context, for FoolsGold). Flower's ``Krum``, ``MultiKrum``,
        ``Bulyan``, ``FedMedian`` and ``FedTrimmedAvg`` aggregate the clients' *models*; here
        the rule sees *updates*, as the papers define them.

        Examples
        --------
        >>> strategy = PoisonlabStrategy("median", fraction_evaluate=0.0)  # doctest: +SKIP
        >>> result = strategy.start(grid=grid, initial_arrays=arrays, num_rounds=5)  # doctest: +SKIP
        >>> strategy.history[-1].excluded  # doctest: +SKIP
        """

        def __init__(self, aggregator: Any, *, server_update_fn: Callable | None = None,
                     **fedavg_params: Any) -> None:
            super().__init__(**fedavg_params)
            self._init_poisonlab(aggregator, server_update_fn)

        def summary(self) -> None:
            log(INFO, "\t├──> poisonlab aggregator: %r", self.aggregator)
            super().summary()

        def configure_train(self, server_round, arrays, config, grid):
            self._remember_global(server_round, arrays)
            return super().configure_train(server_round, arrays, config, grid)

        def aggregate_train(self, server_round, replies):
            # Flower's consistency check would stop the round on one inconsistent reply; the
            # adapter excludes such a reply instead (it is recorded as malformed).
            valid, errors = self._check_and_log_replies(replies, is_train=True, validate=False)
            if not valid:
                return None, None
            return self._aggregate_valid(server_round, valid, len(errors))

    PoisonlabStrategy.__module__ = __name__
    PoisonlabStrategy.__qualname__ = "PoisonlabStrategy"
    return PoisonlabStrategy


def __getattr__(name: str) -> Any:
    # The classes that subclass Flower's are built when first asked for (so that pickling them
    # by reference, as Ray does, finds them here too).
    if name == "PoisonlabStrategy":
        return _strategy_class()
    if name == "MaliciousClientApp":
        return _malicious_app_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- the client side ---------------------------------------------------------------------------

def _check_attack(attack: Any) -> BaseUpdateAttack:
    if not isinstance(attack, BaseUpdateAttack):
        raise InvalidParameterError(f"attack must be a poisonlab update attack (a BaseUpdateAttack, "
                                    f"e.g. registry.create('attack', 'sign_flip', scale=10.0)); got "
                                    f"{type(attack).__name__}")
    if attack.knowledge != "own":
        raise DataError(
            f"{type(attack).__name__} (knowledge={attack.knowledge!r}) needs the honest clients' "
            f"updates, which a Flower client does not see: in a real federation a malicious node "
            f"only has its own update. Use an attack with knowledge='own' (sign flip, Gaussian, "
            f"scaling), or poisonlab.federated.run_federation, which simulates the omniscient "
            f"attacker")
    return attack


def _check_partitions(malicious_partitions: Any) -> frozenset[int]:
    if isinstance(malicious_partitions, (str, bytes)) or not isinstance(malicious_partitions, Iterable):
        raise InvalidParameterError(f"malicious_partitions must be a collection of partition ids "
                                    f"(non-negative int); got {malicious_partitions!r}")
    out = set()
    for p in malicious_partitions:
        if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 0:
            raise InvalidParameterError(f"malicious_partitions must hold non-negative int partition "
                                        f"ids; got {p!r}")
        out.add(int(p))
    if not out:
        raise InvalidParameterError("malicious_partitions is empty: name at least one partition id")
    return frozenset(out)


class _Poisoner:
    """Turns an honest train reply into the attack's (picklable: Ray ships it to its workers)."""

    def __init__(self, attack: BaseUpdateAttack, partitions: frozenset[int], n_clients: int | None):
        self.attack = attack
        self.partitions = partitions
        self.n_clients = n_clients

    def is_malicious(self, context: Any) -> bool:
        config = context.node_config
        if PARTITION_KEY not in config:
            raise DataError(f"this node's config has no {PARTITION_KEY!r}, so the wrapper cannot "
                            f"tell whether it is malicious: Flower's simulation sets it; a deployed "
                            f"SuperNode takes --node-config '{PARTITION_KEY}=<int>'")
        return int(config[PARTITION_KEY]) in self.partitions

    def __call__(self, message: Any, context: Any, reply: Any) -> Any:
        if (message.metadata.message_type.split(".")[0] != "train" or reply.has_error()
                or not self.is_malicious(context)):
            return reply
        key, trained = _single_array_record(reply.content, "the honest train reply")
        received = message.content.array_records.get(key)
        if received is None:
            _, received = _single_array_record(message.content, "the train message")
        r_vec, spec = flatten_arrays(received)
        t_vec, _ = flatten_arrays(trained, spec)
        n_clients = self.n_clients
        if n_clients is None and NUM_PARTITIONS_KEY in context.node_config:
            n_clients = int(context.node_config[NUM_PARTITIONS_KEY])
        bad = self.attack.craft((t_vec - r_vec)[None, :], n_clients=n_clients)[0]
        reply.content[key] = _record(unflatten_arrays(r_vec + bad, spec))
        return reply


@functools.cache
def _malicious_app_class() -> type:
    _import_flwr()
    from flwr.clientapp import ClientApp

    class MaliciousClientApp(ClientApp):
        """A ClientApp that runs an honest one and poisons the train replies of chosen nodes."""

        def __init__(self, honest: Any, poisoner: _Poisoner) -> None:
            super().__init__()
            self.honest = honest
            self.poisoner = poisoner

        def __call__(self, message: Any, context: Any) -> Any:
            reply = self.honest(message=message, context=context)
            return self.poisoner(message, context, reply)

    MaliciousClientApp.__module__ = __name__
    MaliciousClientApp.__qualname__ = "MaliciousClientApp"
    return MaliciousClientApp


def malicious_client_app(honest_app_or_train_fn: Any, attack: BaseUpdateAttack, *,
                         malicious_partitions: Iterable[int], n_clients: int | None = None,
                         evaluate_fn: Callable | None = None) -> Any:
    """Turn an honest Flower client into an attacker on the chosen partitions (red-teaming).

    The nodes whose ``context.node_config["partition-id"]`` is in ``malicious_partitions`` run
    the honest training, take their own update (trained arrays minus the arrays received), and
    send ``received + attack.craft(own_update[None, :], n_clients=...)[0]`` instead; the reply's
    metrics (``num-examples``) are left as the honest code wrote them. Every other node, and
    every non-train message (evaluate, query), passes through unchanged.

    Parameters
    ----------
    honest_app_or_train_fn : flwr.clientapp.ClientApp or callable
        Either the user's honest ``ClientApp`` (all its handlers keep working; only train replies
        are poisoned), or the honest train function ``train_fn(msg, context) -> Message``, from
        which a new ``ClientApp`` is built with it as its ``@app.train()`` handler (and
        ``evaluate_fn`` as its ``@app.evaluate()`` handler when given).
    attack : BaseUpdateAttack
        A poisonlab update attack with ``knowledge == "own"`` (sign flip, Gaussian noise,
        scaling): in a real federation a node sees only its own update.
    malicious_partitions : collection of int
        The partition ids of the attacker's nodes.
    n_clients : int, optional
        The number of clients the attacker believes take part (some attacks scale with it);
        defaults to the node config's ``"num-partitions"`` (set by Flower's simulation), else
        the attack's own default.
    evaluate_fn : callable, optional
        ``evaluate_fn(msg, context) -> Message``, only with a train function.

    Returns
    -------
    flwr.clientapp.ClientApp

    Raises
    ------
    DataError
        For an attack with ``knowledge == "honest"`` (ALIE, IPM, min-max): it needs the honest
        clients' updates, which a Flower client does not see.
    InvalidParameterError
        For an attack that is not a poisonlab update attack, bad partition ids, or something
        that is neither a ClientApp nor a callable.

    Notes
    -----
    Threat model: the attacker controls the nodes of ``malicious_partitions`` completely (what
    they train on and what they send) and knows nothing of the other nodes' updates; the
    server follows the protocol. The attack's ``random_state`` is used as given on every call,
    so an int seed draws the same noise each round and on each malicious node (use None for
    fresh draws). A node without a ``"partition-id"`` in its node config cannot be told apart
    and raises :class:`~poisonlab.exceptions.DataError` (which Flower reports as an error reply).

    Examples
    --------
    >>> app = malicious_client_app(train, registry.create("attack", "sign_flip", scale=10.0),
    ...                            malicious_partitions={0, 1})  # doctest: +SKIP
    """
    attack = _check_attack(attack)
    partitions = _check_partitions(malicious_partitions)
    if n_clients is not None and (isinstance(n_clients, bool) or not isinstance(n_clients, numbers.Integral)
                                  or n_clients < 1):
        raise InvalidParameterError(f"n_clients must be a positive int or None; got {n_clients!r}")
    _import_flwr()
    from flwr.clientapp import ClientApp

    poisoner = _Poisoner(attack, partitions, None if n_clients is None else int(n_clients))
    if isinstance(honest_app_or_train_fn, ClientApp):
        if evaluate_fn is not None:
            raise InvalidParameterError("evaluate_fn goes with a train function; the ClientApp "
                                        "given already has its own handlers")
        return _malicious_app_class()(honest_app_or_train_fn, poisoner)
    if not callable(honest_app_or_train_fn):
        raise InvalidParameterError(f"honest_app_or_train_fn must be a flwr ClientApp or a train "
                                    f"function (msg, context) -> Message; got "
                                    f"{type(honest_app_or_train_fn).__name__}")
    honest = ClientApp()
    honest.train()(honest_app_or_train_fn)
    if evaluate_fn is not None:
        honest.evaluate()(evaluate_fn)
    return _malicious_app_class()(honest, poisoner)
