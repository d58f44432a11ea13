"""Model-file safety: payloads refused without running, safe weights loaded, truncated files refused."""

import pickle

import pytest
import torch

from poisonlab import DataError
from poisonlab.defenses.model import UnsafeModelError, load_state_dict, scan_model_file
from poisonlab.models import build_model


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_payload_file_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps({"weights": _Payload(marker)}))
    report = scan_model_file(evil)
    assert not report.safe and any("system" in g for g in report.dangerous)
    with pytest.raises(UnsafeModelError, match="DANGEROUS"):
        load_state_dict(evil)
    assert not marker.exists(), "the payload must never run"


def test_safe_weights_load_and_truncated_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    module = build_model("mlp", __import__("poisonlab").models.ModelSpec((4,), 2), hidden=(3,))
    pt = tmp_path / "w.pt"
    torch.save(module.state_dict(), pt)
    assert scan_model_file(pt).safe
    state = load_state_dict(pt)
    assert set(state) == set(module.state_dict())
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(st))
    assert load_state_dict(st).keys() == state.keys()
    pt.write_bytes(pt.read_bytes()[:100])
    with pytest.raises(UnsafeModelError, match="could not be scanned|refused"):
        load_state_dict(pt)
    st.write_bytes(st.read_bytes()[:20])
    assert not scan_model_file(st).safe
    with pytest.raises(DataError, match="does not exist"):
        scan_model_file(tmp_path / "nope.pt")
