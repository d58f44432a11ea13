"""The suite is complete and every module is well formed: one module per ID of the results
table, each with its pieces; no module-level mutable state anywhere in the package."""

import dataclasses
import functools
import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import poisonlab.reproductions as reproductions
from poisonlab.data import DATASETS
from poisonlab.reproductions import MODULE_PIECES, MODULES, REPRODUCTIONS, Reproduction

DOCS = Path(__file__).resolve().parents[2] / "docs" / "results"


def _package_modules():
    names = [m.name for m in pkgutil.iter_modules(reproductions.__path__)]
    return [reproductions] + [importlib.import_module(f"poisonlab.reproductions.{n}") for n in names]


def test_every_id_of_the_results_table_has_a_module():
    ids = re.findall(r"^\| (R\d+) \|", (DOCS / "table.md").read_text(), flags=re.M)
    assert ids, "the results table lists no reproduction"
    assert set(ids) <= set(REPRODUCTIONS)
    assert set(REPRODUCTIONS) == {m.ID for m in MODULES}


def test_one_file_per_id_named_after_it():
    files = sorted(n for n in (m.name for m in pkgutil.iter_modules(reproductions.__path__)) if n[0] == "r")
    assert len(files) == len(REPRODUCTIONS)
    for module in MODULES:
        short = module.__name__.rsplit(".", 1)[-1]
        assert re.fullmatch(r"r\d\d_[a-z0-9_]+", short), short
        # an ID is R<number>, or R<number><letter> for a second part of that row (R6c: R6's CIFAR-10 part)
        assert re.fullmatch(r"R\d+[a-z]?", module.ID), module.ID
        assert int(short[1:3]) == int(re.match(r"R(\d+)", module.ID)[1]), f"{short} holds {module.ID}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.ID)
def test_each_module_defines_its_pieces(module):
    for piece in MODULE_PIECES:
        assert hasattr(module, piece), f"{module.__name__} lacks {piece}"
    for text in ("TITLE", "SETTING", "PAPER", "TARGET"):
        assert isinstance(getattr(module, text), str) and getattr(module, text).strip()
    assert callable(module.run) and callable(module.summarize)
    assert module.MINUTES > 0
    assert module.DATA and set(module.DATA) <= set(DATASETS)
    assert module.__doc__ and module.ID in module.__doc__.split(":")[0]
    rep = REPRODUCTIONS[module.ID]
    assert isinstance(rep, Reproduction) and rep.run is module.run and rep.data == tuple(module.DATA)


def test_the_registry_is_read_only():
    with pytest.raises(TypeError):
        REPRODUCTIONS["R99"] = REPRODUCTIONS["R1"]


def test_the_unified_registry_lists_them():
    from poisonlab import registry

    assert set(REPRODUCTIONS) <= set(registry.available("reproduction"))
    assert registry.get("reproduction", "R11").title == "STRIP on R1's model"


def _is_constant(value):
    """Read-only values: scalars, strings, modules, frozen dataclasses, and tuples, frozensets
    and mapping proxies of them."""
    if isinstance(value, (str, bytes, int, float, bool, type(None), types.ModuleType)):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__dataclass_params__.frozen
    if isinstance(value, (tuple, frozenset)):
        return all(_is_constant(v) for v in value)
    if isinstance(value, types.MappingProxyType):
        return all(_is_constant(v) for v in value.values())
    return False


@pytest.mark.parametrize("module", _package_modules(), ids=lambda m: m.__name__)
def test_no_module_level_mutable_state(module):
    """No process-wide caches: no module global is a dict, list or set (constants are tuples or
    read-only mappings), and no function is wrapped in an lru_cache."""
    for name, value in vars(module).items():
        if name.startswith("__"):
            continue
        assert not isinstance(value, (dict, list, set, bytearray)), f"{module.__name__}.{name} is mutable"
        if isinstance(value, (tuple, frozenset, types.MappingProxyType)):
            assert _is_constant(value), f"{module.__name__}.{name} holds mutable values"
        assert not isinstance(value, functools._lru_cache_wrapper), f"{module.__name__}.{name} is an lru_cache"
    source = Path(module.__file__).read_text()
    assert "lru_cache" not in source and "_RUNS" not in source and "global " not in source


def test_the_old_modules_are_gone():
    for old in ("reproduce", "reproduce_attacks", "reproduce_text"):
        with pytest.raises(ImportError):
            importlib.import_module(f"poisonlab.evaluation.{old}")
