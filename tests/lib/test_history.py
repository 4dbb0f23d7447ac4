"""The latent map's history: recorded by real trainings on digits, kept whole through a SIGKILL and a resume,
aligned so items glide, and animated (library and command line)."""

from __future__ import annotations

import io
import json
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image

from vae.analysis import history
from vae.cli.main import main
from vae.runs import folder as rf
from vae.runs import jobs

RUN = "digits-small"  # conftest: 15 epochs of digits, latent 4


def test_a_run_records_a_frame_before_training_and_one_per_epoch(trained_runs):
    frames = history.frames(trained_runs / RUN)
    assert [f.epoch for f in frames] == [float(e) for e in range(16)]
    assert [f.step for f in frames] == sorted({f.step for f in frames})  # one frame per step, in order
    assert frames[0].test_elbo is None and all(f.test_elbo is not None for f in frames[1:])
    indices, labels, split = history.read_probe(trained_runs / RUN)
    assert split == "test" and len(indices) == 360 and labels is not None  # all 360 test digits (< 2,000)
    codes = frames[-1].codes()
    assert codes.shape == (360, 4) and np.isfinite(codes).all()
    assert frames[-1].samples().shape == (64, 1, 8, 8)  # the decoder's history: 8x8 fixed prior samples


def test_the_probe_set_is_stratified_fixed_by_the_seed_and_capped():
    labels = np.repeat(np.arange(4), [400, 300, 200, 100])
    idx = history.probe_indices(len(labels), labels, 100, seed=3)
    assert len(idx) == 100 and len(set(idx)) == 100
    assert np.bincount(labels[idx]).tolist() == [40, 30, 20, 10]
    assert np.array_equal(idx, history.probe_indices(len(labels), labels, 100, seed=3))
    assert not np.array_equal(idx, history.probe_indices(len(labels), labels, 100, seed=4))
    assert np.array_equal(history.probe_indices(50, None, 100, seed=0), np.arange(50))


def test_aligned_frames_move_items_less_than_independent_fits(trained_runs):
    codes = [f.codes() for f in history.frames(trained_runs / RUN)]
    aligned, independent = history.aligned_layouts(codes), history.independent_layouts(codes)
    assert history.mean_displacement(aligned) < history.mean_displacement(independent)
    # aligning rotates or reflects each frame: distances between items are unchanged
    for a, b in zip(aligned, independent, strict=True):
        np.testing.assert_allclose(np.linalg.norm(a[:5] - a[5:10], axis=1), np.linalg.norm(b[:5] - b[5:10], axis=1),
                                   rtol=1e-5)  # fmt: skip


def test_each_frames_layout_is_computed_once_however_often_the_page_asks(trained_runs, monkeypatch):
    """The live page asks for every frame's layout again at each new frame: each frame file is read once (until it
    changes), and the layouts are the same as computed afresh."""
    frames = history.frames(trained_runs / RUN)
    history._frame_pca.cache_clear()
    reads = []
    read = history._read_codes
    monkeypatch.setattr(history, "_read_codes", lambda path: reads.append(path) or read(path))
    first = history.align(history.frame_layouts(frames[:8]))
    again = history.align(history.frame_layouts(frames))  # a page asking again once more frames have come
    assert len(reads) == len(frames)  # 8, then only the 8 new ones
    fresh = history.aligned_layouts([f.codes() for f in frames])
    for a, b in zip(again, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[-1], again[7])
    first[0][:] = 0  # a caller's change to its layouts reaches no other caller
    assert np.abs(history.frame_layouts(frames[:1])[0]).sum() > 0


def test_each_frames_picture_is_encoded_once_however_often_the_page_asks(trained_runs, monkeypatch):
    """The same for the replay's pictures: each frame's JPEG of its prior samples is made once per frame file, and is
    the JPEG of that frame's own samples."""
    from PIL import Image

    frames = history.frames(trained_runs / RUN)
    history._frame_jpeg.cache_clear()
    reads = []
    read = history._read_samples
    monkeypatch.setattr(history, "_read_samples", lambda path: reads.append(path) or read(path))
    first = history.sample_jpegs(frames[:8])
    again = history.sample_jpegs(frames)
    assert len(reads) == len(frames) and again[:8] == first  # 8, then only the new ones; the same bytes
    from vae.images import make_grid

    for frame, jpeg in zip(frames, again, strict=True):
        picture = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=float) / 255
        samples = frame.samples()  # (S, 1, 8, 8), tiled in a square at their own size
        expected = make_grid(samples, ncol=int(np.ceil(np.sqrt(len(samples)))))[0]
        assert picture.shape == expected.shape and np.abs(picture - expected).mean() < 0.05


@pytest.mark.slow
def test_the_history_survives_a_sigkill_and_a_resume(runs):
    from vae.config import TrainConfig

    run = runs / "killed"
    rf.create_run(runs, "killed", rf.load_config(runs / RUN)[0], TrainConfig(epochs=40, batch_size=16, threads=1),
                  rf.load_config(runs / RUN)[2])  # fmt: skip
    jobs.start(run)
    deadline = time.time() + 90
    while len(history.frames(run)) < 4 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(jobs.refresh_status(run)["pid"], signal.SIGKILL)
    jobs.wait(run, timeout=30)
    assert len(history.frames(run)) >= 4
    assert jobs.start(run, resume=True) and jobs.wait(run, timeout=120)["state"] == "finished"
    frames = history.frames(run)
    assert [f.epoch for f in frames] == [float(e) for e in range(41)]  # none twice, none missing
    assert not [p for p in rf.history_dir(run).iterdir() if p.name.endswith(".tmp")]


def test_a_run_without_a_history_gets_a_sentence(runs, capsys):
    import shutil

    shutil.rmtree(rf.history_dir(runs / RUN))  # as a run made before runs recorded one
    assert history.frames(runs / RUN) == [] and history.read_probe(runs / RUN) is None
    code = main(["--runs-dir", str(runs), "history", RUN, "--json"])
    assert code == 2 and "no latent history" in json.loads(capsys.readouterr().out)["error"]


def test_the_command_line_lists_frames_and_writes_an_animated_gif(trained_runs, tmp_path, capsys):
    gif = tmp_path / "map.gif"
    code = main(["--runs-dir", str(trained_runs), "history", RUN, "--gif", str(gif), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and len(out["frames"]) == 16 and out["probe_items"] == 360
    with Image.open(io.BytesIO(gif.read_bytes())) as img:
        assert img.format == "GIF" and img.n_frames == 16 and img.is_animated
        assert img.height == 360 + 24 + 32  # the map, each frame's epoch caption, and a legend of the 10 labels


@pytest.mark.parametrize("size", [0])
def test_a_probe_size_of_zero_records_nothing(tmp_path, size):
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs.folder import new_run
    from vae.train import train

    cfg = DataConfig(name="digits")
    ds = load_dataset(cfg)
    run = new_run(tmp_path, "no-history", ds, cfg, latent_dim=2, hidden=(16,),
                  train_cfg=TrainConfig(epochs=1, probe_size=size, threads=1))  # fmt: skip
    assert train(run, dataset=ds)["state"] == "finished"
    assert history.frames(run) == [] and not rf.history_dir(run).exists()
