"""The model families (the conditional VAE, β-TCVAE, IWAE training, the VampPrior) beside the plain VAE: their
maths on tensors, then each trained on the real digits, recorded, resumed exactly, and through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vae.config import DataConfig, ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.models import build_model
from vae.objectives import family_terms, kl_divergence, log_likelihood, log_normal_diag
from vae.runs import folder as rf
from vae.runs.folder import new_run
from vae.train import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"))


@pytest.fixture(scope="module")
def batch(digits) -> tuple[torch.nn.Module, torch.Tensor]:
    """A small float64 model (one epoch would not change the maths) and 64 real digits."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=4, hidden=(32,))).double().requires_grad_(False)
    return model, digits.x_train[:64].double()


def test_iwae_training_with_one_sample_is_the_one_sample_elbo_and_the_elbo_in_expectation(batch):
    model, x = batch
    eps = torch.randn((1, len(x), 4), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    terms = family_terms(model, x, "iwae", eps=eps)
    params, mu, logvar, z = model(x, None, eps=eps[0])
    log_w = (
        log_likelihood(x, params, "bernoulli", model.log_sigma)
        + log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
        - log_normal_diag(z, mu, logvar)
    )
    torch.testing.assert_close(terms["loss"], -log_w.mean(), rtol=1e-12, atol=1e-12)  # K = 1: the ELBO at z
    # over many draws its KL part, log q(z|x) - log p(z) at the sample, averages to the ELBO's closed-form KL
    many = torch.randn((2000, len(x), 4), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * many  # (draws, B, L)
    kl_at = (log_normal_diag(z, mu, logvar) - log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))).mean(1)
    closed = kl_divergence(mu, logvar).mean()
    assert abs(float(kl_at.mean() - closed)) < 4 * float(kl_at.std()) / len(kl_at) ** 0.5


def test_the_iwae_training_bound_rises_with_k(trained_runs, digits):
    model = rf.load_model(trained_runs / "digits-small").double().requires_grad_(False)  # a trained model
    x = digits.x_test[:200].double()
    g = torch.Generator().manual_seed(3)
    bounds = [-float(family_terms(model, x, "iwae", eps=torch.randn((k, len(x), 4), generator=g,
                                                                     dtype=torch.float64))["loss"])
              for k in (1, 10, 200)]  # fmt: skip
    assert bounds[0] < bounds[1] < bounds[2], bounds


def test_beta_tcvae_weights_only_the_total_correlation_and_its_parts_sum_to_the_kl_at_the_sample(batch):
    model, x = batch
    eps = torch.randn((len(x), 4), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    one = family_terms(model, x, "beta-tcvae", beta=1.0, eps=eps, dataset_size=len(x))
    six = family_terms(model, x, "beta-tcvae", beta=6.0, eps=eps, dataset_size=len(x))
    parts = one["mi"].mean() + one["tc"].mean() + one["dwkl"].mean()
    torch.testing.assert_close(one["loss"], one["recon"].mean() + parts)
    torch.testing.assert_close(six["loss"] - one["loss"], 5.0 * one["tc"].mean())
    _, mu, logvar, z = model(x, None, eps=eps)
    at_sample = log_normal_diag(z, mu, logvar) - log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    torch.testing.assert_close(one["mi"] + one["tc"] + one["dwkl"], at_sample)  # log q(z|x) - log p(z), per item
    torch.testing.assert_close(one["kl"], kl_divergence(mu, logvar))  # the recorded KL is the true one


@pytest.fixture(scope="module")
def vamp(digits) -> tuple[torch.nn.Module, torch.Tensor]:
    """A float64 VampPrior model with 7 pseudo-inputs, and 64 real digits."""
    torch.manual_seed(0)
    cfg = ModelConfig(latent_dim=4, hidden=(32,), family="vampprior", pseudo_inputs=7)
    return build_model(cfg).double().requires_grad_(False), digits.x_train[:64].double()


def test_the_vampprior_density_is_the_mean_of_the_encoders_posteriors_at_the_pseudo_inputs(vamp):
    model, x = vamp
    z = torch.randn((3, 50, 4), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    mu, logvar = model.encode(model.pseudo_inputs())  # (7, 4) each
    assert mu.shape == (7, 4) and float(model.pseudo_inputs().min()) >= 0.0 and float(model.pseudo_inputs().max()) <= 1
    components = torch.distributions.Independent(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), 1)
    direct = torch.logsumexp(components.log_prob(z[..., None, :]), -1) - torch.log(torch.tensor(7.0))  # (3, 50)
    torch.testing.assert_close(model.log_prior(z), direct)
    plain = build_model(ModelConfig(latent_dim=4, hidden=(32,))).double()  # N(0, I) for every other family
    standard = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(4), torch.ones(4)), 1)
    torch.testing.assert_close(plain.log_prior(z), standard.log_prob(z.float()).double())


def test_the_vampprior_kl_is_at_the_sample_and_its_one_sample_iwae_bound_is_its_elbo(vamp):
    model, x = vamp
    eps = torch.randn((len(x), 4), generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    terms = family_terms(model, x, "vampprior", beta=1.0, eps=eps)
    _, mu, logvar, z = model(x, None, eps=eps)
    torch.testing.assert_close(terms["kl"], log_normal_diag(z, mu, logvar) - model.log_prior(z))
    iwae = family_terms(model, x, "iwae", eps=eps[None])  # K = 1 weighs p(x, z) with the model's own prior
    torch.testing.assert_close(iwae["loss"], terms["loss"])
    heavy = family_terms(model, x, "vampprior", beta=3.0, eps=eps)
    torch.testing.assert_close(heavy["loss"] - terms["loss"], 2.0 * terms["kl"].mean())


def test_samples_of_the_vampprior_come_from_its_components_and_of_n01_are_the_usual_ones(vamp):
    from vae.analysis.posterior import model_prior_samples, sample_prior

    model, _ = vamp
    z = model_prior_samples(model, 20_000, seed=3)
    mu, logvar = (t.numpy() for t in model.encode(model.pseudo_inputs()))
    mixture_mean = mu.mean(0)
    mixture_var = (np.exp(logvar) + mu**2).mean(0) - mixture_mean**2
    assert np.all(np.abs(z.mean(0) - mixture_mean) < 5 * np.sqrt(mixture_var / len(z)))
    np.testing.assert_allclose(z.var(0), mixture_var, rtol=0.05)
    plain = build_model(ModelConfig(latent_dim=4, hidden=(32,)))
    np.testing.assert_array_equal(model_prior_samples(plain, 9, 0.5, seed=2), sample_prior(9, 4, 0.5, seed=2))


def make(root, digits, name, family, pseudo_inputs=None, **train_kw):
    kw = {"epochs": 2, "batch_size": 64, "threads": 1, "log_every": 5, "grid_size": 4, "precision": "fp64"}
    return new_run(root, name, digits, DataConfig(name="digits"), latent_dim=4, hidden=(32,), family=family,
                   pseudo_inputs=pseudo_inputs, train_cfg=TrainConfig(**kw | train_kw))  # fmt: skip


@pytest.mark.parametrize("family", ["cvae", "beta-tcvae", "iwae", "vampprior"])
def test_each_family_trains_records_its_terms_and_resumes_exactly(tmp_path, digits, family, stop_and_resume):
    full = make(tmp_path, digits, "full", family, pseudo_inputs=20, beta=6.0)
    assert train(full, dataset=digits)["state"] == "finished"
    assert rf.load_config(full)[0].family == family
    epochs = [m for m in rf.read_metrics(full) if m["type"] == "epoch"]
    steps = [m for m in rf.read_metrics(full) if m["type"] == "step"]
    for record in epochs:
        assert record["test_elbo"] < 0 and record["train_loss"] > 0
    tc_keys = ("train_index_code_mi", "train_total_correlation", "train_dimension_wise_kl")
    if family == "beta-tcvae":  # its three terms, per epoch and per logged window
        assert all(all(k in r for k in tc_keys) for r in epochs)
        assert all("total_correlation" in r for r in steps)
        r = epochs[-1]
        assert r["train_index_code_mi"] + r["train_total_correlation"] + r["train_dimension_wise_kl"] == pytest.approx(
            r["train_kl"], abs=3.0
        )  # the estimate of the batch's KL at its samples against the closed form
    else:
        assert not any(k in epochs[-1] for k in tc_keys)
    part = make(tmp_path, digits, "part", family, pseudo_inputs=20, beta=6.0)
    stop_and_resume(part, digits, at_step=30)
    a, b = rf.load_state(full)[0], rf.load_state(part)[0]
    for k in a:
        if k.startswith("model."):
            assert torch.equal(a[k], b[k]), k


def test_a_run_recorded_before_families_reads_as_a_vae(tmp_path, digits):
    run = make(tmp_path, digits, "old", "vae", epochs=1)
    path = run / rf.CONFIG_FILE
    config = json.loads(path.read_text())
    del config["model"]["family"]
    path.write_text(json.dumps(config))
    assert rf.load_config(run)[0].family == "vae"


def test_the_command_line_trains_a_family_and_refuses_an_unknown_one(tmp_path, capsys):
    command(tmp_path, capsys, "train", "--data", "digits", "--family", "iwae", "--iwae-k", "3", "--epochs", "1",
            "--latent", "3", "--hidden", "16", "--name", "cli-iwae")  # fmt: skip
    config = json.loads((tmp_path / "cli-iwae" / rf.CONFIG_FILE).read_text())
    assert config["model"]["family"] == "iwae" and config["train"]["iwae_k"] == 3
    bad = subprocess.run([sys.executable, "-m", "vae", "train", "--family", "gan"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr


def command(root, capsys, *args, ok: bool = True) -> dict:
    """``python -m vae --runs-dir root ARGS --json`` in this process: its JSON answer (exit 0, or 2 when not ``ok``)."""
    from vae.cli.main import main

    capsys.readouterr()
    assert main(["--runs-dir", str(root), *args, "--json"]) == (0 if ok else 2)
    return json.loads(capsys.readouterr().out)


def test_the_command_line_trains_a_vampprior_samples_its_prior_and_evaluates_it(tmp_path, capsys):
    command(tmp_path, capsys, "train", "--data", "digits", "--family", "vampprior", "--pseudo-inputs", "12",
            "--epochs", "2", "--latent", "3", "--hidden", "32", "--name", "cli-vamp")  # fmt: skip
    config = json.loads((tmp_path / "cli-vamp" / rf.CONFIG_FILE).read_text())
    assert config["model"]["family"] == "vampprior" and config["model"]["pseudo_inputs"] == 12
    model = rf.load_model(tmp_path / "cli-vamp")
    assert model.pseudo.shape == (12, 1, 8, 8)
    out = tmp_path / "prior.png"
    command(tmp_path, capsys, "sample", "cli-vamp", "--n", "16", "--out", str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = command(tmp_path, capsys, "evaluate", "cli-vamp", "--iwae", "20")
    # the IWAE bound with the model's own prior: above its one-sample ELBO, below zero
    assert scores["test_elbo"] < scores["iwae_ll"] < 0, scores


@pytest.fixture(scope="module")
def cvae(digits) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A float64 conditional VAE of the digits' 10 classes, 64 real digits and their labels."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=4, hidden=(32,), family="cvae", classes=10)).double()
    return model.requires_grad_(False), digits.x_train[:64].double(), digits.y_train[:64]


def test_the_conditional_vae_is_given_the_label_and_its_one_sample_bound_is_its_elbo(cvae):
    from vae.objectives import iwae_bound

    model, x, y = cvae
    with pytest.raises(ValueError, match="needs a label"):
        model.encode(x)
    with pytest.raises(ValueError, match="class numbers from 0 to 9"):
        model.encode(x, torch.full((64,), 10))
    mu, _ = model.encode(x, y)
    assert not torch.allclose(mu, model.encode(x, (y + 1) % 10)[0])  # the encoder reads the label
    z = torch.zeros(1, 4, dtype=torch.float64)
    assert not torch.allclose(model.decode(z, 3), model.decode(z, 7))  # and the decoder draws it
    eps = torch.randn((len(x), 4), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    terms = family_terms(model, x, "cvae", eps=eps, y=y)
    params, mu, logvar, z = model(x, None, eps=eps, y=y)
    torch.testing.assert_close(terms["recon"], -log_likelihood(x, params, "bernoulli", model.log_sigma))
    torch.testing.assert_close(terms["kl"], kl_divergence(mu, logvar))
    torch.testing.assert_close(terms["loss"], (terms["recon"] + terms["kl"]).mean())
    iwae = family_terms(model, x, "iwae", eps=eps[None], y=y)  # the same weights and noise, K = 1: the ELBO at z
    at_z = log_normal_diag(z, mu, logvar) - log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    torch.testing.assert_close(iwae["loss"], (terms["recon"] + at_z).mean())
    g = torch.Generator().manual_seed(9)
    bounds = [float(iwae_bound(model, x, k, g, y=y).mean()) for k in (1, 50)]  # log p(x | y), rising with K
    assert bounds[0] < bounds[1] < 0
    # the verbs on whole arrays take one label for all rows or one per row
    np.testing.assert_allclose(model.decode_numpy(np.zeros((3, 4)), 5), model.decode_numpy(np.zeros((3, 4)), [5] * 3))


def test_a_conditional_vae_is_refused_on_data_without_labels(tmp_path):
    from vae.data import load_dataset

    table = tmp_path / "rows.csv"
    rng = np.random.default_rng(0)
    table.write_text("a,b,c\n" + "\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(60, 3))))
    cfg = DataConfig(name="file", path=str(table))
    with pytest.raises(ValueError, match="needs labelled data, and .* has no labels"):
        new_run(tmp_path / "runs", "c", load_dataset(cfg), cfg, latent_dim=2, family="cvae")
    with pytest.raises(ValueError, match="ModelConfig.classes must be at least 2"):
        ModelConfig(family="cvae")


def test_the_command_line_trains_a_conditional_vae_and_samples_a_class_by_name(tmp_path, capsys):
    command(tmp_path, capsys, "train", "--data", "digits", "--family", "cvae", "--epochs", "3", "--latent", "3",
            "--hidden", "32", "--name", "cli-cvae")  # fmt: skip
    assert json.loads((tmp_path / "cli-cvae" / rf.CONFIG_FILE).read_text())["model"]["classes"] == 10
    one = command(tmp_path, capsys, "sample", "cli-cvae", "--n", "4", "--label", "7", "--out", str(tmp_path / "7.png"))
    rows = command(tmp_path, capsys, "sample", "cli-cvae", "--n", "9", "--out", str(tmp_path / "all.png"))
    assert one["labels"] == [7] and rows["labels"] == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # row r draws class r
    bad = command(tmp_path, capsys, "sample", "cli-cvae", "--label", "eleven", "--out", str(tmp_path / "x.png"),
                  ok=False)  # fmt: skip
    assert "--label must be one of the run's classes" in bad["error"]
    scores = command(tmp_path, capsys, "evaluate", "cli-cvae", "--iwae", "10")
    assert scores["iwae_conditional"] is True and scores["test_elbo"] < scores["iwae_ll"] < 0


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_a_conditional_vae_on_fashion_mnist_draws_the_class_it_is_given(tmp_path):
    """Decodes of 100 prior samples given each class are judged that class by a logistic regression on the data's
    pixels; the same z given another class is judged that class. β = 5: at β = 1 and a few epochs the encoder
    still leaks the class into z (measured here: 69 % of samples judged their class, 41 % of reconstructions given a
    wrong label still judged the true one), so a prior sample can carry another class's look; a heavier KL squeezes
    what the label already says out of z (97 %)."""
    from sklearn.linear_model import LogisticRegression

    cfg = DataConfig(name="fashion-mnist", max_train=12_000, max_test=1_000)
    ds = load_dataset(cfg)
    pixels = ds.x_train[:3000].flatten(1).numpy()
    judge = LogisticRegression(max_iter=100).fit(pixels, ds.y_train[:3000].numpy())
    assert judge.score(ds.x_test.flatten(1).numpy(), ds.y_test.numpy()) > 0.75  # a judge worth asking
    train_cfg = TrainConfig(epochs=15, batch_size=128, lr=2e-3, beta=5.0, threads=1, probe_size=0)
    run = new_run(tmp_path, "f-cvae", ds, cfg, latent_dim=8, hidden=(256,), family="cvae", train_cfg=train_cfg)
    assert train(run, dataset=ds)["state"] == "finished"
    model = rf.load_model(run)
    z = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    right = np.array([np.mean(judge.predict(model.decode_numpy(z, c).reshape(100, -1)) == c) for c in range(10)])
    assert right.mean() >= 0.9 and right.min() >= 0.75, right  # shirts and pullovers look alike, to the judge too
    swapped = judge.predict(model.decode_numpy(z, (np.arange(100) + 3) % 10).reshape(100, -1))  # same z, new class
    assert np.mean(swapped == (np.arange(100) + 3) % 10) >= 0.9


@pytest.mark.parametrize("family", ["cvae", "beta-tcvae", "iwae", "vampprior"])
def test_each_family_travels_in_a_run_zip_and_decodes_the_same_after(tmp_path, digits, family):
    from vae.runs.runzip import import_run_zip, run_zip

    run = make(tmp_path / "runs", digits, f"zip-{family}", family, pseudo_inputs=10, epochs=1)
    assert train(run, dataset=digits)["state"] == "finished"
    copy = import_run_zip(tmp_path / "imported", run_zip(run), "run")
    a, b = rf.load_model(run), rf.load_model(copy)
    assert b.cfg == a.cfg and b.cfg.family == family
    z = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = 3 if family == "cvae" else None
    np.testing.assert_array_equal(b.decode_numpy(z, y), a.decode_numpy(z, y))
    if family == "vampprior":  # the learned prior travels too
        np.testing.assert_array_equal(b.sample_prior(7, seed=1), a.sample_prior(7, seed=1))


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
@pytest.mark.parametrize("family", ["cvae", "beta-tcvae", "iwae", "vampprior"])
def test_each_family_trains_on_fashion_mnist_through_the_command_line_and_is_evaluated(tmp_path, capsys, family):
    """`python -m vae train --data fashion-mnist --family F`, then `evaluate --json`: the run is that family, and its
    scores (the IWAE log-likelihood with its own prior, the KL's three parts) are finite and in order."""
    extra = {"vampprior": ["--pseudo-inputs", "50"], "iwae": ["--iwae-k", "5"]}.get(family, [])
    command(tmp_path, capsys, "train", "--data", "fashion-mnist", "--max-train", "6000", "--family", family, *extra,
            "--epochs", "1", "--latent", "4", "--hidden", "64", "--name", "cli-fashion")  # fmt: skip
    model, _, data = rf.load_config(tmp_path / "cli-fashion")
    assert (model.family, data.name, data.max_train) == (family, "fashion-mnist", 6000)
    scores = command(tmp_path, capsys, "evaluate", "cli-fashion", "--iwae", "10")
    assert scores["test_elbo"] < scores["iwae_ll"] < 0  # the bound below the likelihood it estimates
    assert scores.get("iwae_conditional", False) is (family == "cvae")  # log p(x | y) for the conditional VAE only
    parts = [scores[k] for k in ("index_code_mi", "total_correlation", "dimension_wise_kl")]
    assert all(np.isfinite(parts)) and min(parts) > -0.5  # nats; estimates of non-negative terms
