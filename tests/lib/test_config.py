"""One test per validation rule of the config dataclasses, plus the JSON round trip."""

import numpy as np
import pytest

from vae.config import DataConfig, ModelConfig, TrainConfig, watched_threads


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": (1, 28)}, "input_shape"),
        ({"input_shape": (0, 28, 28)}, "input_shape"),
        ({"arch": "transformer"}, "arch must be one of mlp, conv"),
        ({"latent_dim": 0}, "latent_dim must be an integer from 1 to 128"),
        ({"latent_dim": 129}, "latent_dim must be an integer from 1 to 128"),
        ({"latent_dim": 2.5}, "latent_dim"),
        ({"hidden": (400, 400, 400, 400, 400)}, "hidden must be a list of at most 4"),
        ({"hidden": (0,)}, "hidden"),
        ({"channels": ()}, "channels must be a list of 1 to 4"),
        ({"channels": (32, 0)}, "channels"),
        ({"likelihood": "poisson"}, "likelihood must be one of bernoulli, gaussian"),
        ({"learn_variance": "yes"}, "learn_variance"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"arch": "conv", "input_shape": (784,)}, "image shape"),
        ({"arch": "conv", "input_shape": (2, 28, 28)}, "1 or 3 channels"),
        ({"arch": "conv", "input_shape": (1, 30, 30)}, "1 or 3 channels"),
        ({"arch": "conv", "input_shape": (1, 28, 28), "channels": (8, 8, 8)}, "at most 2 layers"),
    ],
)
def test_model_config_rules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr must be a number in \\(0.0, 1.0\\]"),
        ({"lr": 2.0}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"seed": -1}, "seed"),
        ({"beta": -0.5}, "beta"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"threads": 0}, "threads"),
        ({"log_every": 0}, "log_every"),
        ({"grid_size": 40}, "grid_size"),
        ({"weight_decay": 3.0}, "weight_decay"),
        ({"lr_schedule": "step"}, "lr_schedule must be 'constant' or 'cosine'"),
        ({"lr_warmup_epochs": -1}, "lr_warmup_epochs"),
        ({"adam_beta2": 1.0}, "adam_beta2 must be a number in \\[0.0, 1.0\\)"),
        ({"adam_beta2": -0.1}, "adam_beta2"),
    ],
)
def test_train_config_rules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_the_cosine_schedule_warms_up_linearly_then_decays_to_zero():
    total, per_epoch = 100, 10
    constant = TrainConfig(lr=2e-3)
    assert {constant.lr_at(s, total, per_epoch) for s in range(total)} == {2e-3}
    cosine = TrainConfig(lr=2e-3, lr_schedule="cosine", lr_warmup_epochs=1.0)
    lrs = [cosine.lr_at(s, total, per_epoch) for s in range(total)]
    assert lrs[:10] == pytest.approx([2e-3 * (s + 1) / 10 for s in range(10)])  # linear up to the peak
    assert lrs[10] == pytest.approx(2e-3)  # the peak at the warm-up's end
    assert lrs[55] == pytest.approx(1e-3)  # half-way through the decay: half the peak
    assert (np.diff(lrs[10:]) < 0).all()  # then strictly down
    assert 0 < lrs[-1] < 1e-3 * 2e-3  # nearly zero at the last step


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "name"),
        ({"name": "file"}, "path"),
        ({"size": 2}, "size"),
        ({"count": 1}, "count"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 0.95}, "test_fraction"),
        ({"split_seed": -3}, "split_seed"),
        ({"max_train": 0}, "max_train"),
        ({"max_test": -1}, "max_test"),
    ],
)
def test_data_config_rules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**kwargs)


def test_round_trip_through_dict():
    m = ModelConfig(input_shape=(1, 28, 28), arch="conv", latent_dim=16, channels=(32, 64))
    t = TrainConfig(epochs=3, lr=3e-4, beta=4.0)
    d = DataConfig(name="fashion-mnist", max_train=1000)
    assert ModelConfig.from_dict(m.to_dict()) == m
    assert TrainConfig.from_dict(t.to_dict()) == t
    assert DataConfig.from_dict(d.to_dict()) == d


def test_a_run_recorded_before_adam_beta2_reads_as_the_0_999_it_trained_with():
    recorded = TrainConfig(epochs=3).to_dict()
    assert recorded["adam_beta2"] == TrainConfig.adam_beta2 == 0.95  # new runs record the default
    del recorded["adam_beta2"]  # a config.json written before the field existed
    assert TrainConfig.from_dict(recorded) == TrainConfig(epochs=3, adam_beta2=0.999)


def test_unknown_field_is_refused_by_name():
    with pytest.raises(ValueError, match="no field\\(s\\) dropout"):
        ModelConfig.from_dict({"latent_dim": 4, "dropout": 0.5})


def test_configs_are_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().lr = 1.0  # type: ignore[misc]


def test_a_training_the_app_starts_leaves_a_core_to_the_page_that_watches_it():
    """One process keeps its threads but never takes every core (the server and the browser run on the one left);
    several processes share the cores out; never fewer than one thread."""
    assert watched_threads(2, cores=2) == 1  # this machine: the default MLP on 1 thread, the page on the other
    assert watched_threads(2, cores=4) == 2  # cores to spare: as configured
    assert watched_threads(8, cores=4) == 3
    assert watched_threads(2, cores=1) == watched_threads(1, cores=2) == 1
    assert watched_threads(2, procs=2, cores=8) == 4  # processes: the cores shared out, all of them
    assert watched_threads(1, procs=3, cores=2) == 1
