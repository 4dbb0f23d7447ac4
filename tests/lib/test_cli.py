"""The command line, driven in-process through ``vae.__main__.main``."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vae.cli.main import main
from vae.config import TrainConfig
from vae.distributed import native_bf16


def run_json(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture
def trained(tmp_path, capsys):
    code, out = run_json(
        capsys,
        "--runs-dir",
        str(tmp_path),
        "train",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--latent",
        "4",
        "--hidden",
        "32",
        "--threads",
        "1",
        "--name",
        "cli run",
        "--json",
    )
    assert code == 0, out
    return tmp_path, out


def test_train_reports_the_run(trained):
    root, out = trained
    assert out["run"] == "cli-run" and out["state"] == "finished" and out["epoch"] == 2
    assert out["test_elbo"] < 0
    assert (root / "cli-run" / "model.safetensors").is_file()


def test_train_records_the_default_recipe_and_takes_adam_beta2(trained, tmp_path, capsys):
    """With no flags the run trains with the default recipe, in bfloat16 where the CPU multiplies it in
    hardware (as the Train page does), and ``--adam-beta2`` / ``--precision`` override it."""
    root, _ = trained
    recorded = json.loads((root / "cli-run" / "config.json").read_text())["train"]
    default = TrainConfig()
    assert (recorded["batch_size"], recorded["lr"], recorded["adam_beta2"]) == (256, 3e-3, 0.95)
    assert (default.batch_size, default.lr, default.adam_beta2) == (256, 3e-3, 0.95)
    assert recorded["precision"] == ("bf16" if native_bf16() else "fp32")
    code, out = run_json(capsys, "--runs-dir", str(tmp_path / "other"), "train", "--data", "digits", "--epochs", "1",
                         "--latent", "2", "--hidden", "16", "--threads", "1", "--adam-beta2", "0.99",
                         "--precision", "fp32", "--name", "b", "--json")  # fmt: skip
    assert code == 0 and out["state"] == "finished", out
    recorded = json.loads((tmp_path / "other" / "b" / "config.json").read_text())["train"]
    assert (recorded["adam_beta2"], recorded["precision"]) == (0.99, "fp32")
    assert main(["--runs-dir", str(tmp_path), "train", "--data", "digits", "--adam-beta2", "1", "--json"]) == 2
    assert "adam_beta2 must be a number in [0.0, 1.0)" in capsys.readouterr().out  # --json: the error as JSON


def test_train_takes_a_learning_rate_schedule(tmp_path, capsys):
    code, out = run_json(capsys, "--runs-dir", str(tmp_path), "train", "--data", "digits", "--epochs", "2",
                         "--latent", "2", "--hidden", "16", "--threads", "1", "--batch", "16", "--lr", "2e-3",
                         "--lr-schedule", "cosine", "--lr-warmup", "0.5", "--name", "cosine", "--json")  # fmt: skip
    assert code == 0 and out["state"] == "finished", out
    config = json.loads((tmp_path / "cosine" / "config.json").read_text())
    assert config["train"]["lr_schedule"] == "cosine" and config["train"]["lr_warmup_epochs"] == 0.5
    lrs = [m["lr"] for m in map(json.loads, (tmp_path / "cosine" / "metrics.jsonl").read_text().splitlines())
           if m["type"] == "step"]  # fmt: skip
    assert max(lrs) == pytest.approx(2e-3, rel=0.1) and lrs[-1] < 0.5 * max(lrs)


def test_runs_lists_it(trained, capsys):
    root, _ = trained
    code, runs = run_json(capsys, "--runs-dir", str(root), "runs", "--json")
    assert code == 0 and [r["name"] for r in runs] == ["cli-run"]
    assert runs[0]["state"] == "finished" and runs[0]["dataset"] == "digits"
    assert main(["--runs-dir", str(root), "runs"]) == 0
    assert "cli-run" in capsys.readouterr().out


def test_evaluate(trained, capsys):
    root, _ = trained
    code, out = run_json(capsys, "--runs-dir", str(root), "evaluate", "cli-run", "--iwae", "5", "--json")
    assert code == 0
    assert out["iwae_k"] == 5 and out["iwae_ll"] > out["test_elbo"] and "knn_accuracy" in out
    parts = [out["index_code_mi"], out["total_correlation"], out["dimension_wise_kl"]]  # the KL split three ways
    assert sum(parts) == pytest.approx(out["test_kl"], rel=0.2) and parts[0] > 0


def test_embed_writes_codes_and_coordinates(trained, capsys):
    root, _ = trained
    target = root / "emb.csv"
    code, out = run_json(
        capsys, "--runs-dir", str(root), "embed", "cli-run", "--method", "pca", "--out", str(target), "--json"
    )
    assert code == 0 and out["points"] == 360
    table = pd.read_csv(target)
    assert list(table.columns[:6]) == ["split", "index", "label", "label_name", "x", "y"] and len(table) == 360
    assert (
        table["label_name"].astype(str) == table["label"].astype(str)
    ).all()  # the digits' class names are "0" ... "9"
    assert not list(root.glob(".emb.csv.*"))  # written through a temp file, nothing left beside it
    assert not any(c.startswith("factor_") for c in table.columns)  # the digits have no known factors
    assert (table["split"] == "test").all() and (table["index"] == np.arange(360)).all()
    npz = root / "emb.npz"
    main(["--runs-dir", str(root), "embed", "cli-run", "--method", "pca", "--out", str(npz), "--json"])
    with np.load(npz, allow_pickle=False) as f:
        assert f["codes"].shape == (360, 4) and f["xy"].shape == (360, 2)


def test_embed_all_writes_every_item_with_its_split(trained, capsys):
    from vae.data import load_dataset
    from vae.runs import folder as rf

    root, _ = trained
    target = root / "all.csv"
    code, out = run_json(
        capsys, "--runs-dir", str(root), "embed", "cli-run", "--method", "pca", "--split", "all", "--out",
        str(target), "--json",
    )  # fmt: skip
    ds = load_dataset(rf.load_data_config(root / "cli-run"))
    assert code == 0 and out["points"] == len(ds.x_train) + len(ds.x_test) == 1797
    table = pd.read_csv(target)
    assert table["split"].value_counts().to_dict() == {"train": len(ds.x_train), "test": len(ds.x_test)}
    test_rows = table[table["split"] == "test"]
    assert (test_rows["index"].to_numpy() == np.arange(len(ds.x_test))).all()
    assert (test_rows["label"].to_numpy() == ds.y_test.numpy()).all()
    mu, _ = rf.load_model(root / "cli-run").embed(ds.x_test[:5])  # the rows carry that item's own code
    np.testing.assert_allclose(test_rows[["z0", "z1", "z2", "z3"]].to_numpy()[:5], mu, atol=1e-5)


def test_datasets_lists_what_is_here(capsys):
    code, out = run_json(capsys, "datasets", "--json")
    names = {d["name"]: d for d in out}
    assert code == 0 and names["digits"]["available"]
    assert {"fashion-mnist", "mnist", "sprites"} <= set(names)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["train", "--latent", "500"], "latent_dim must be an integer from 1 to 128"),
        (["train", "--lr", "0"], "lr must be a number"),
        (["train", "--data", "imagenet"], "imagenet"),
        (["evaluate", "no-such-run"], "There is no run"),
    ],
)
def test_bad_requests_get_one_sentence_and_exit_2(tmp_path, capsys, argv, match):
    code = main(["--runs-dir", str(tmp_path), *argv, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and match in out["error"]


@pytest.mark.slow
def test_errors_are_sentences_not_tracebacks(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vae", "--runs-dir", str(tmp_path), "train", "--beta", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: TrainConfig.beta") and "Traceback" not in proc.stderr


def test_posterior_prints_an_items_mu_sigma_and_samples(trained, capsys):
    from vae.data import load_dataset
    from vae.runs import folder as rf

    root, _ = trained
    code, out = run_json(capsys, "--runs-dir", str(root), "posterior", "cli-run", "--item", "12", "--samples", "7",
                         "--json")  # fmt: skip
    ds = load_dataset(rf.load_data_config(root / "cli-run"))
    mu, logvar = rf.load_model(root / "cli-run").embed(ds.x_test[12:13])
    assert code == 0 and out["item"] == 12 and out["label"] == int(ds.y_test[12])
    np.testing.assert_allclose(out["mu"], mu[0], atol=1e-6)
    np.testing.assert_allclose(out["sigma"], np.exp(0.5 * logvar[0]), rtol=1e-5)
    assert np.asarray(out["samples"]).shape == (7, 4)
    code, out = run_json(capsys, "--runs-dir", str(root), "posterior", "cli-run", "--item", "360", "--json")
    assert code == 2 and "from 0 to 359" in out["error"]
    assert main(["--runs-dir", str(root), "posterior", "cli-run", "--item", "3"]) == 0
    assert "σ" in capsys.readouterr().out  # a table for a person


def test_sample_writes_a_grid_of_prior_samples(trained, capsys, tmp_path):
    from PIL import Image

    root, _ = trained
    target = tmp_path / "grid.png"
    code, out = run_json(capsys, "--runs-dir", str(root), "sample", "cli-run", "--n", "9", "--temperature", "0.8",
                         "--out", str(target), "--json")  # fmt: skip
    assert code == 0 and out["n"] == 9
    with Image.open(target) as img:  # 3 x 3 digits of 8x8 with 1-pixel seams, enlarged
        scale = img.width // (3 * 8 + 2)
        assert img.size == (scale * 26, scale * 26) and scale > 1
    code, out = run_json(capsys, "--runs-dir", str(root), "sample", "cli-run", "--temperature", "-1", "--json")
    assert code == 2 and "temperature" in out["error"]


def test_evaluate_and_embed_take_a_device(trained, capsys):
    """--device on evaluate and embed: the CPU gives the same figures as before; CUDA, absent here, a sentence."""
    import torch

    root, _ = trained
    code, cpu = run_json(capsys, "--runs-dir", str(root), "evaluate", "cli-run", "--iwae", "5", "--device", "cpu",
                         "--json")  # fmt: skip
    assert code == 0 and cpu["device"] == "cpu"
    code, auto = run_json(capsys, "--runs-dir", str(root), "evaluate", "cli-run", "--iwae", "5", "--json")
    assert code == 0 and auto["test_elbo"] == cpu["test_elbo"] and auto["iwae_ll"] == cpu["iwae_ll"]
    if torch.cuda.is_available():
        return
    for command in (["evaluate", "cli-run"], ["embed", "cli-run", "--method", "pca"]):
        code, out = run_json(capsys, "--runs-dir", str(root), *command, "--device", "cuda", "--json")
        assert code == 2 and "no CUDA GPU" in out["error"]


def test_help_lists_the_commands_a_person_uses_and_hides_the_apps_worker(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "train" in text and "export" in text
    assert "worker" not in text and "SUPPRESS" not in text
