"""The posterior-collapse alarm on real trainings (scikit-learn's digits): a large β collapses the latent space
and raises it, the default does not, and free bits keeps the collapsing configuration's units active."""

import pytest

from vae.analysis.diagnose import collapse_warning
from vae.config import DataConfig, TrainConfig
from vae.data import load_dataset
from vae.runs import folder as rf
from vae.runs.folder import new_run
from vae.train import train


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"))


def epochs_of(tmp_path, digits, name: str, **train_cfg) -> list[dict]:
    cfg = TrainConfig(epochs=20, batch_size=64, lr=3e-3, threads=1, probe_size=0, **train_cfg)
    run = new_run(tmp_path, name, digits, DataConfig(name="digits"), latent_dim=8, hidden=(128,), train_cfg=cfg)
    assert train(run, dataset=digits)["state"] == "finished"
    return [m for m in rf.read_metrics(run) if m.get("type") == "epoch"]


@pytest.mark.slow
def test_a_large_beta_collapses_and_raises_the_alarm_the_default_does_not(tmp_path, digits):
    collapsed = epochs_of(tmp_path, digits, "beta8", beta=8.0)
    default = epochs_of(tmp_path, digits, "beta1")
    assert collapsed[-1]["active_units"] <= 1 and collapsed[-1]["test_kl"] < 0.5
    warning = collapse_warning(collapsed, 8)
    assert warning and "collapsing" in warning and "free bits" in warning and "warm-up" in warning
    assert default[-1]["active_units"] >= 4 and collapse_warning(default, 8) is None
    assert len(default[-1]["test_kl_per_dim"]) == 8  # what the heat strip draws, per epoch


@pytest.mark.slow
def test_free_bits_keeps_the_collapsing_configurations_units_active(tmp_path, digits):
    plain = epochs_of(tmp_path, digits, "plain", beta=8.0)
    floored = epochs_of(tmp_path, digits, "floored", beta=8.0, free_bits=0.5)
    assert floored[-1]["active_units"] > plain[-1]["active_units"] + 2
    assert collapse_warning(floored, 8) is None


def test_no_alarm_without_epoch_records():
    assert collapse_warning([], 8) is None
    assert collapse_warning([{"type": "epoch", "epoch": 1}], 8) is None  # a run from before these were logged
