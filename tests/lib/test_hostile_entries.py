"""More of a hostile runs folder (the issue's second sweep): what a user's file, a folder's name or a full disk can
do to the command line and the maps. The runs are copies of a real model trained on scikit-learn's digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ui.text import chart_text
from vae.cli.main import main
from vae.projection import LatentProjector, cached_projection

RUN = "digits-small"


def test_data_that_cannot_be_read_leaves_no_copy_and_its_sentence_names_the_users_file(runs, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\nabc,3,y\n")
    code = main(["--runs-dir", str(runs), "train", "--data", "file", "--path", str(bad), "--epochs", "1", "--json"])
    said = json.loads(capsys.readouterr().out)["error"]
    assert code == 2 and said.startswith(f"{bad} has text ('abc', line 3)")
    assert not any((runs / "_uploads").iterdir())  # the copy made for it went with it
    good = tmp_path / "good.csv"  # a file a run already uses stays when another try with it fails
    good.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{'xy'[i % 2]}\n" for i in range(60)))
    ok = ["--runs-dir", str(runs), "train", "--data", "file", "--path", str(good), "--epochs", "1"]
    assert main([*ok, "--label-column", "label"]) == 0
    kept = sorted((runs / "_uploads").iterdir())
    assert len(kept) == 1
    code = main([*ok, "--label-column", "nope", "--json"])
    assert code == 2 and sorted((runs / "_uploads").iterdir()) == kept


def test_a_folder_name_with_terminal_escapes_is_printed_as_text(runs, capsys):
    odd = runs / "esc\x1b[31mRED\x1b[0m\nx"
    odd.mkdir()
    (odd / "config.json").write_text("{}")
    assert main(["--runs-dir", str(runs), "runs"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "esc\\x1b[31mRED\\x1b[0m\\x0ax is broken" in out


def test_a_map_that_cannot_be_kept_on_a_full_disk_is_used_all_the_same(tmp_path, monkeypatch):
    codes = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)

    def full(self, path, metadata=None):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(LatentProjector, "save", full)
    proj = cached_projection(tmp_path, "pca-full", codes, {"method": "pca"}, checkpoint="c", split="test")
    assert proj.embedding_.shape == (200, 2) and not list(tmp_path.glob("*.npz"))


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("<b>html</b>", "&lt;b&gt;html&lt;/b&gt;"),
        ('<a href="http://127.0.0.1:9/">x</a>', '&lt;a href="http://127.0.0.1:9/"&gt;x&lt;/a&gt;'),
        ("%{customdata} & more", "%&#123;customdata} &amp; more"),
        ("T-shirt/top", "T-shirt/top"),
    ],
)
def test_a_label_is_a_plotly_trace_name_shown_as_it_is(label, shown):
    assert chart_text(label) == shown


def test_a_history_that_cannot_be_read_says_why(runs, tmp_path, capsys):
    run = runs / RUN
    history = run / "latent-history"
    kept = tmp_path / "kept"
    history.rename(kept)
    history.symlink_to(kept)  # a link where the folder should be: never followed
    assert main(["--runs-dir", str(runs), "history", RUN, "--json"]) == 2
    assert "latent history cannot be read" in json.loads(capsys.readouterr().out)["error"]
    history.unlink()
    history.mkdir()
    (history / "probe.safetensors").write_bytes(b"not tensors")
    assert main(["--runs-dir", str(runs), "history", RUN, "--json"]) == 2
    assert "probe file is missing or damaged" in json.loads(capsys.readouterr().out)["error"]


def test_a_model_file_that_is_a_pipe_is_named_as_such_not_as_missing(runs):
    import os

    import ui.cache

    run = runs / RUN
    (run / "model.safetensors").unlink()
    os.mkfifo(run / "model.safetensors")
    with pytest.raises(ValueError, match="model.safetensors is not a regular file"):
        ui.cache.model_for(run)


def test_a_read_only_runs_folder_says_so_instead_of_asking_to_remove_the_lock(runs, monkeypatch):
    import errno
    import os

    from vae.runs import jobs

    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(jobs.ADMISSION_LOCK):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(jobs.os, "open", read_only)
    with pytest.raises(ValueError, match="the runs folder is read-only: nothing can start in it"):
        jobs.start(runs / RUN, resume=True, root=runs)
