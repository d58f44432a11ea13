"""poisonlab._files: atomic writes and the one writer of the command line (OutputGuard)."""

import os

import pytest

from poisonlab._files import OutputError, OutputGuard, check_input, plan_outputs
from poisonlab.exceptions import DataError, PoisonlabError


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"the user's data")
    return path


def test_an_input_is_refused_by_path_symlink_and_hard_link_even_with_force(tmp_path, data):
    link, hard = tmp_path / "link.npz", tmp_path / "hard.npz"
    link.symlink_to(data)
    os.link(data, hard)
    for out in (data, link, hard, tmp_path / "." / "data.npz"):
        guard = OutputGuard([data], force=True)
        with pytest.raises(OutputError, match="is the input .*never writes over its inputs"):
            guard.file(out, "--out")
    assert data.read_bytes() == b"the user's data"


def test_a_symlinked_input_protects_its_target(tmp_path, data):
    link = tmp_path / "link.npz"
    link.symlink_to(data)
    with pytest.raises(OutputError, match="is the input"):
        OutputGuard([link], force=True).file(data)


def test_files_inside_an_input_folder_are_refused_new_ones_allowed(tmp_path):
    folder = tmp_path / "monitor"
    folder.mkdir()
    (folder / "strip.json").write_text("{}")
    guard = OutputGuard([folder], force=True)
    with pytest.raises(OutputError, match="inside the input folder"):
        guard.file(folder / "strip.json")
    assert guard.file(folder / "new.csv") == folder / "new.csv"


def test_existing_files_need_force_and_messages_name_the_option(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old")
    with pytest.raises(OutputError, match=r"^--out .*out.csv exists; pass --force to replace it$"):
        OutputGuard().file(out, "--out")
    with pytest.raises(OutputError, match="pass force=True"):
        OutputGuard(force_hint="force=True").file(out)
    guard = OutputGuard(force=True)
    guard.write_text(guard.file(out), "new")
    assert out.read_text() == "new"


def test_a_dangling_link_counts_as_existing(tmp_path):
    out = tmp_path / "out.csv"
    out.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="exists"):
        OutputGuard().file(out)


def test_folders_and_paths_under_files_are_refused(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "file").write_text("x")
    guard = OutputGuard(force=True)
    with pytest.raises(OutputError, match="is a folder; give a file name"):
        guard.file(tmp_path / "dir.npz")
    with pytest.raises(OutputError, match=r"file is a file, not a folder"):
        guard.file(tmp_path / "file" / "deeper" / "out.csv")
    with pytest.raises(OutputError, match="is a file; give a folder"):
        guard.folder(tmp_path / "file", files=["a.csv"])
    with pytest.raises(OutputError, match="file is a file, not a folder"):
        guard.folder(tmp_path / "file" / "sub", files=["a.csv"])


def test_a_path_declared_twice_is_refused(tmp_path):
    guard = OutputGuard()
    guard.file(tmp_path / "a.json", "--out")
    with pytest.raises(OutputError, match="is also --out"):
        guard.file(tmp_path / "." / "a.json", "the sidecar of --out")


def test_a_folder_holding_earlier_results_is_refused_whole(tmp_path):
    out = tmp_path / "scan"
    out.mkdir()
    for name in ("scores.csv", "scores.json"):
        (out / name).write_text("old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"already holds scores.csv, scores.json \(from an earlier run\); "
                                          r"pass --force"):
        OutputGuard().folder(out, files=["scores.csv", "scores.json", "quarantine.txt"])
    guard = OutputGuard(force=True)
    guard.folder(out, files=["scores.csv", "scores.json", "quarantine.txt"])
    for name in ("scores.csv", "scores.json", "quarantine.txt"):
        guard.write_text(out / name, "new")
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "quarantine.txt", "scores.csv", "scores.json"]


def test_writes_are_checked_again_and_only_for_declared_paths(tmp_path):
    guard = OutputGuard()
    out = guard.file(tmp_path / "record.json")
    (tmp_path / "record.json").write_text("appeared meanwhile")
    with pytest.raises(OutputError, match="exists"):
        guard.write_text(out, "{}")
    assert (tmp_path / "record.json").read_text() == "appeared meanwhile"
    with pytest.raises(RuntimeError, match="was not declared"):
        guard.write_text(tmp_path / "other.json", "{}")


def test_a_file_the_guard_wrote_may_be_written_again(tmp_path):
    guard = OutputGuard()
    out = guard.file(tmp_path / "sub" / "R1.json")
    guard.write_text(out, "seed 1")
    guard.write_text(out, "seeds 1-2")
    assert out.read_text() == "seeds 1-2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["R1.json"]  # no temporary file left


def test_writing_context_for_library_writers(tmp_path):
    guard = OutputGuard()
    weights, card = guard.file(tmp_path / "m.safetensors"), guard.file(tmp_path / "m.card.json")
    with guard.writing(weights, card):
        weights.write_bytes(b"w")
        card.write_text("{}")
    with guard.writing(weights, card):  # written by this guard: allowed again
        pass
    other = OutputGuard()
    with pytest.raises(OutputError, match="exists"):
        other.file(weights)


def test_plan_outputs_and_errors_are_poisonlab_errors(tmp_path, data):
    with pytest.raises(PoisonlabError):
        plan_outputs(inputs=[data], outputs=[(data, "--out")])
    guard = plan_outputs(inputs=[data], outputs=[tmp_path / "a.csv", (tmp_path / "b.json", "--report")])
    assert [p.name for p in guard.planned] == ["a.csv", "b.json"]


def test_check_input(tmp_path, data):
    assert check_input(data, "--input") == data
    with pytest.raises(DataError, match="--input .*missing.npz does not exist$"):
        check_input(tmp_path / "missing.npz", "--input")
    with pytest.raises(DataError, match="is a folder; give a file"):
        check_input(tmp_path, "MODEL")
    with pytest.raises(DataError, match="is a file; give a folder"):
        check_input(data, "--monitor", folder=True)
    with pytest.raises(DataError, match="data.npz is a file, not a folder"):
        check_input(data / "x.npz")
