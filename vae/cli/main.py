"""The command line: ``python -m vae train | evaluate | embed | history | posterior | sample | runs | datasets |
import | export`` (the latent-space commands: ``vae/cli/latent.py``).

Every command takes ``--json`` for machine-readable output. Errors in what you asked for print
one sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Before torch loads OpenMP: a waiting thread spins briefly, then sleeps. Spinning longer starved the app
# beside a training (the training kept 4-7 % of its pace beside eight sessions); never spinning
# (OMP_WAIT_POLICY=PASSIVE) made a Fashion-MNIST epoch 1.7x slower alone. docs/BENCHMARKS.md, 8 sessions.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from ..runs import folder as rf  # noqa: E402
from ..runs import listing  # noqa: E402
from .common import progress_bar  # noqa: E402
from .common import resolve_run as _resolve_run  # noqa: E402
from .common import runs_root as _root  # noqa: E402
from .compare import COMPARE_COMMANDS, add_compare_parser  # noqa: E402
from .latent import LATENT_COMMANDS, add_latent_parsers  # noqa: E402
from .text import print_human, shown  # noqa: E402


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", help="dataset name (see `datasets`) or 'file' with --path")
    p.add_argument("--path", help="a user's .npz/.npy/.csv file, image folder/.zip, or IDX folder")
    p.add_argument("--root", help="folder holding the IDX files of mnist / fashion-mnist")
    p.add_argument("--label-column", help="CSV column holding labels")
    p.add_argument("--size", type=int, help="image side: sprites (32/64) or resizing an image folder")
    p.add_argument("--count", type=int, help="number of sprites to generate")
    p.add_argument("--max-train", type=int, help="train on a fixed-seed subset of this many items")
    p.add_argument("--max-test", type=int, help="test on a fixed-seed subset of this many items")


def _parser() -> argparse.ArgumentParser:
    from ..config import ARCHS, FAMILIES, IWAE_K, MAX_LATENT, PRECISIONS
    from ..config import ModelConfig as M  # the defaults of the command line are the configs' own
    from ..config import TrainConfig as T

    top = argparse.ArgumentParser(prog="python -m vae", description="Train and measure small VAEs.")
    top.add_argument(
        "--runs-dir", default=None, help="where runs live (default: checkpoints/ or $LATENT_EXPLORER_RUNS)"
    )
    sub = top.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a new run (or --resume one) with a progress bar")
    _add_data_args(t)
    t.add_argument("--arch", default=M.arch, choices=list(ARCHS))
    t.add_argument("--latent", type=int, default=M.latent_dim, help=f"latent size (1-{MAX_LATENT})")
    t.add_argument("--hidden", type=int, nargs="*", default=list(M.hidden), help="MLP hidden widths")
    t.add_argument("--channels", type=int, nargs="+", default=list(M.channels), help="conv channels")
    t.add_argument("--likelihood", choices=["bernoulli", "gaussian"], help="default: the dataset's suggestion")
    t.add_argument("--learn-variance", action="store_true", help="learn the Gaussian variance")
    t.add_argument("--family", default=M.family, choices=list(FAMILIES),
                   help="vae: the ELBO (β-VAE with --beta); cvae: encoder and decoder given the label; "
                        "beta-tcvae: --beta weights the total correlation only; iwae: the K-sample importance-weighted "
                        "bound (--iwae-k); vampprior: a learned mixture prior "
                        "(--pseudo-inputs)")  # fmt: skip
    t.add_argument("--iwae-k", type=int, default=T.iwae_k, help="importance samples per item for --family iwae")
    t.add_argument("--pseudo-inputs", type=int, default=M.pseudo_inputs,
                   help="the VampPrior's components, for --family vampprior")  # fmt: skip
    t.add_argument("--beta", type=float, default=T.beta)
    t.add_argument("--warmup", type=float, default=T.warmup_epochs, help="epochs of linear KL warm-up")
    t.add_argument("--free-bits", type=float, default=T.free_bits, help="nats: KL floor per latent dimension")
    t.add_argument("--precision", default="auto", choices=["auto", *PRECISIONS],
                   help="bf16: bfloat16 autocast; auto: bf16 where the CPU multiplies it in hardware; "
                        "fp64: float64 throughout (slow, exact checks)")  # fmt: skip
    t.add_argument("--epochs", type=int, default=T.epochs)
    t.add_argument("--batch", type=int, default=T.batch_size)
    t.add_argument("--lr", type=float, default=T.lr)
    t.add_argument("--lr-schedule", default=T.lr_schedule, choices=["constant", "cosine"],
                   help="cosine: linear warm-up over --lr-warmup epochs, then cosine decay to 0")  # fmt: skip
    t.add_argument("--lr-warmup", type=float, default=T.lr_warmup_epochs, help="epochs of learning-rate warm-up")
    t.add_argument("--adam-beta2", type=float, default=T.adam_beta2, help="Adam's second-moment decay")
    t.add_argument("--seed", type=int, default=T.seed)
    t.add_argument("--threads", type=int, default=T.threads)
    t.add_argument("--name", default=None, help="run name (default: dataset-arch-zN)")
    t.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    t.add_argument("--background", action="store_true", help="start a background process and return")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    t.add_argument("--procs", type=int, default=1, help="train with this many processes here (over 127.0.0.1)")
    t.add_argument("--json", action="store_true")

    e = sub.add_parser("evaluate", help="test ELBO, IWAE log-likelihood, active units, k-NN accuracy, disentanglement")
    e.add_argument("run")
    e.add_argument("--iwae", type=int, default=IWAE_K, metavar="K", help="importance samples (0 to skip)")
    e.add_argument(
        "--disentanglement",
        action="store_true",
        help="also MIG, the beta-VAE and FactorVAE scores, DCI and SAP (data with known factors: sprites)",
    )
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: CUDA when present")
    e.add_argument("--json", action="store_true")

    r = sub.add_parser("runs", help="table of runs with state and metrics")
    r.add_argument("--json", action="store_true")

    d = sub.add_parser("datasets", help="what data is available here and where it comes from")
    d.add_argument("--download", choices=["mnist", "fashion-mnist"], help="download into the cache")
    d.add_argument("--json", action="store_true")

    add_latent_parsers(sub)
    add_compare_parser(sub)

    i = sub.add_parser("import", help="add a run .zip (checked whole first, as on the Runs page)")
    i.add_argument("zip")
    i.add_argument("--name", default=None, help="run name (default: the zip's name)")
    i.add_argument("--json", action="store_true")

    x = sub.add_parser("export", help="write a run as a .zip (what the Runs page's Download gives)")
    x.add_argument("run")
    x.add_argument("--out", default=None, help="the .zip to write (default: RUN.zip here)")
    x.add_argument("--json", action="store_true")

    w = sub.add_parser("worker")  # the app's background training: left out of --help (the metavar below)
    w.add_argument("run", nargs="?")
    w.add_argument("--resume", action="store_true")
    w.add_argument("--standby", action="store_true", help="wait for the run on stdin (vae.runs.standby)")
    sub.metavar = "{" + ",".join(name for name in sub.choices if name != "worker") + "}"
    return top


def _data_config(args):
    from ..config import DataConfig
    from ..data import DATASETS
    from ..data.sources import adopt

    name, path = args.data, args.path
    if path and name in ("digits", "file"):
        name = "file"
    elif name not in DATASETS and not path and Path(name).expanduser().exists():
        name, path = "file", name  # `--data some.csv` means `--data file --path some.csv`
    cfg = DataConfig(
        name=name,
        path=path,
        root=args.root,
        label_column=args.label_column,
        size=args.size,
        count=args.count,
        max_train=args.max_train,
        max_test=args.max_test,
    )
    return adopt(cfg, _root(args))  # a user's file or folder is kept in the runs folder's uploads


def _load_adopted(args, load):
    """``load(_data_config(args))``: the data config and its data. Data that cannot be read leaves no copy of the
    user's file in the uploads (unless a run had it there before), and its sentence names the file the user gave."""
    import shutil

    from ..data.sources import uploads_dir

    folder = uploads_dir(_root(args))
    before = set(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else set()
    cfg = _data_config(args)
    try:
        return cfg, load(cfg)
    except (ValueError, OSError) as e:
        stored = cfg.path or cfg.root
        if stored and Path(stored) not in before and Path(stored).parent == folder:
            shutil.rmtree(stored) if Path(stored).is_dir() else Path(stored).unlink(missing_ok=True)
        given = args.path or args.root or args.data
        text = str(e).replace(str(stored), str(given)) if stored and given else str(e)
        raise (ValueError(text) if isinstance(e, ValueError) else OSError(e.errno, e.strerror, given)) from None


class _Bar:
    """A tqdm progress bar over optimiser steps, fed by the trainer's callback."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def __call__(self, kind: str, rec: dict) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if kind == "status" and rec.get("total_steps") and self.bar is None:
            self.bar = tqdm(total=rec["total_steps"], initial=rec.get("step", 0), unit="step", dynamic_ncols=True)
        if self.bar is None:
            return
        if kind == "step":
            self.bar.update(rec["step"] - self.bar.n)
            self.bar.set_postfix(epoch=f"{rec['epoch']:.2f}", loss=f"{rec['loss']:.1f}")
        elif kind == "epoch":
            self.bar.update(rec["step"] - self.bar.n)
            self.bar.write(
                f"epoch {rec['epoch']}: train loss {rec['train_loss']:.2f}, test -ELBO {-rec['test_elbo']:.2f} nats "
                f"({rec['epoch_seconds']:.1f} s, {rec['examples_per_s']:.0f} ex/s)"
            )
        elif kind == "status" and rec.get("state") in ("finished", "stopped", "failed"):
            self.bar.close()


def _precision(choice: str, device) -> str:
    """``auto``: bfloat16 where the CPU multiplies it in hardware (as the Train page defaults), else float32."""
    from ..distributed import native_bf16

    if choice != "auto":
        return choice
    return "bf16" if device.type == "cpu" and native_bf16() else "fp32"


def cmd_train(args) -> dict | None:
    from ..config import TrainConfig
    from ..data import load_dataset
    from ..distributed import Ranks, resolve_device
    from ..runs import jobs
    from ..runs.folder import new_run
    from ..train import train

    if args.procs != 1 and "WORLD_SIZE" not in os.environ:
        return _launch_ranks(args)
    device = resolve_device(args.device)
    ranks = Ranks.from_env(device)  # a rank of vae.launch or torchrun: join the other processes
    if ranks.world > 1 and args.background:
        raise ValueError("--background starts one process; under torchrun, run torchrun itself in the background.")
    if args.resume:
        run_dir = _resolve_run(args, args.resume)
        dataset = None
    else:
        train_cfg = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch,
            lr=args.lr,
            seed=args.seed,
            beta=args.beta,
            warmup_epochs=args.warmup,
            free_bits=args.free_bits,
            precision=_precision(args.precision, device),
            threads=args.threads,
            lr_schedule=args.lr_schedule,
            lr_warmup_epochs=args.lr_warmup,
            adam_beta2=args.adam_beta2,
            iwae_k=args.iwae_k,
        )
        data_cfg, dataset = _load_adopted(args, load_dataset)  # the item shape sizes the model; a worker reloads it
        data_label = data_cfg.name if data_cfg.name != "file" else Path(args.path or args.data).name
        name = args.name or rf.default_name(data_label, args.arch, args.latent)
        if ranks.main:  # rank 0 makes the run folder and tells the others its name
            name = new_run(_root(args), name, dataset, data_cfg, arch=args.arch, latent_dim=args.latent,
                           hidden=tuple(args.hidden), channels=tuple(args.channels), likelihood=args.likelihood,
                           learn_variance=args.learn_variance, family=args.family,
                           pseudo_inputs=args.pseudo_inputs, train_cfg=train_cfg).name  # fmt: skip
        run_dir = rf.run_path(_root(args), ranks.broadcast_text(name))
    if args.background:
        try:
            pid = jobs.start(run_dir, resume=bool(args.resume))
        except (ValueError, FileNotFoundError, OSError):
            if not args.resume:
                rf.delete_run(_root(args), run_dir.name)  # a refused start leaves no empty run behind
            raise
        return {"run": run_dir.name, "path": str(run_dir), "pid": pid, "state": "starting"}
    before = rf.read_status(run_dir)
    if ranks.main:  # one run has one writer, however it was started; the job limit holds here too
        try:
            if args.resume:
                rf.check_state(run_dir)  # a resume that cannot happen is refused before anything is written
            jobs.admit_here(run_dir)
        except (ValueError, FileNotFoundError):
            if not args.resume:
                rf.delete_run(_root(args), run_dir.name)  # a refused start leaves no empty run behind
            raise
    callback = _Bar(args.json) if ranks.main else None
    try:
        status = train(run_dir, resume=bool(args.resume), dataset=dataset, callback=callback, handle_signals=True,
                       device=args.device, ranks=ranks)  # fmt: skip
    except (ValueError, FileNotFoundError):
        if ranks.main and args.resume:
            rf.write_status(run_dir, before)  # a failed resume leaves the run as it was, admission included
        raise
    ranks.close()
    if not ranks.main:
        return None  # rank 0 reports
    epochs = [m for m in rf.read_metrics(run_dir) if m.get("type") == "epoch"]
    out = {"run": run_dir.name, "path": str(run_dir), **{k: status.get(k) for k in ("state", "message", "epoch")}}
    if epochs:
        out.update(test_elbo=epochs[-1]["test_elbo"], elapsed_s=epochs[-1]["elapsed_s"])
    return out


def _launch_ranks(args) -> None:
    """``train --procs N``: the same command as N processes on this machine, talking over 127.0.0.1 only."""
    if not 1 <= args.procs <= (os.cpu_count() or 1) * 4:
        raise ValueError(f"--procs must be from 1 to {(os.cpu_count() or 1) * 4} here; got {args.procs}.")
    argv = [a for i, a in enumerate(args.argv) if a != "--procs" and args.argv[i - 1 : i] != ["--procs"]]
    argv = [a for a in argv if not a.startswith("--procs=")]
    from ..launch import launch

    code = launch(argv, args.procs)
    if code:
        raise ValueError(f"the {args.procs} training processes ended with status {code}; the run's status says why.")
    return None


def cmd_evaluate(args) -> dict:
    from ..analysis.evaluate import evaluate_run
    from ..config import MAX_IWAE_K

    if not 0 <= args.iwae <= MAX_IWAE_K:
        raise ValueError(f"--iwae must be from 0 (skip) to {MAX_IWAE_K:,} importance samples; got {args.iwae}.")
    run_dir = _resolve_run(args, args.run)
    with progress_bar(not args.json) as progress:
        out = evaluate_run(
            run_dir, iwae_k=args.iwae, progress=progress, disentanglement=args.disentanglement, device=args.device
        )
    return {"run": run_dir.name, **out}


def cmd_import(args) -> dict:
    from ..runs.runzip import MAX_ZIP_BYTES, import_run_zip

    path = Path(args.zip)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file; expected a run .zip made by export or the Runs page.")
    if path.stat().st_size > MAX_ZIP_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size:,} bytes, over the {MAX_ZIP_BYTES:,} a run .zip may have.")
    run_dir = import_run_zip(_root(args), path.read_bytes(), path.stem, name=args.name)
    return {"run": run_dir.name, "path": str(run_dir)}


def cmd_export(args) -> dict:
    from ..runs.fileio import atomic_write_bytes
    from ..runs.runzip import run_zip

    run_dir = _resolve_run(args, args.run)
    out = Path(args.out) if args.out else Path(f"{run_dir.name}.zip")
    if out.is_dir():
        out = out / f"{run_dir.name}.zip"
    data = run_zip(run_dir)
    atomic_write_bytes(out, data)
    return {"run": run_dir.name, "out": str(out), "bytes": len(data)}


def cmd_runs(args) -> list:
    from ..runs.jobs import refresh_status

    runs = listing.list_runs(_root(args))
    for r in runs:
        if r["state"] != "broken":
            r["state"] = refresh_status(r["path"]).get("state", r["state"])
    return runs


def cmd_datasets(args):
    from ..data import DEFAULT_CACHE_DIR, available_datasets, download_idx

    if args.download:
        path = download_idx(args.download, DEFAULT_CACHE_DIR)
        return {"downloaded": args.download, "path": str(path)}
    return available_datasets()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command == "worker":  # the app's background training (under torchrun when it asks for processes)
        from ..distributed import Ranks
        from ..train import train

        if args.standby:
            from ..runs.standby import await_run

            if (handed := await_run()) is None:
                return 0
            args.run, args.resume = handed
        try:
            ranks = Ranks.from_env()
            status = train(Path(args.run), resume=args.resume, handle_signals=True, ranks=ranks)
            ranks.close()
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0 if status.get("state") in ("finished", "stopped") else 1
    handlers = {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "runs": cmd_runs,
        "datasets": cmd_datasets,
        "import": cmd_import,
        "export": cmd_export,
        **LATENT_COMMANDS,
        **COMPARE_COMMANDS,
    }
    try:
        out = handlers[args.command](args)
    except (ValueError, OSError) as e:  # FileNotFoundError and PermissionError are OSErrors
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            e = f"{e.strerror or e} ({e.filename}); check that the folder exists and can be written."
        if getattr(args, "json", False):
            print(json.dumps({"error": str(e)}))
        else:
            print(f"error: {shown(e)}", file=sys.stderr)
        return 2
    if out is None:
        return 0  # a training process other than rank 0, or torchrun's own processes reported
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print_human(args.command, out)
    if args.command == "train" and isinstance(out, dict) and out.get("state") == "failed":
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
