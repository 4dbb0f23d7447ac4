"""Training: whole dataset in memory, a random permutation per epoch, Adam, and a run folder.

``train(run_dir)`` trains the run described by ``run_dir/config.json`` and writes into that
folder: ``metrics.jsonl`` (a line every ``log_every`` steps and one per epoch), ``status.json``,
``model.safetensors`` + ``state.safetensors`` (every epoch, on pause/stop and at the end) and
``recon.png`` / ``samples.png`` per epoch. Another process steers it through ``control.json``
(``{"command": "pause" | "resume" | "stop"}``) or SIGTERM. ``resume=True`` continues exactly
where the last checkpoint left off (optimiser, permutation and random state included).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import history
from . import run as rf
from .config import ModelConfig, TrainConfig
from .data import Dataset, load_dataset
from .evaluate import active_units, elbo, encode
from .images import make_grid, png_bytes
from .models import VAE, build_model, check_state_dict
from .objectives import divergence_message, elbo_terms, kl_per_dim

EVAL_BATCH = 1000
Callback = Callable[[str, dict], None]


class _Stop(Exception):
    """Raised inside the loop when a stop was requested."""


@dataclass
class _LoopState:
    """Everything besides weights and optimiser needed to resume exactly."""

    epoch: int = 0  # completed epochs
    pos: int = 0  # batches done in the current epoch
    step: int = 0  # optimiser steps in total
    elapsed: float = 0.0  # seconds spent training, over all sessions
    perm: torch.Tensor | None = None
    sums: dict = field(default_factory=lambda: {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0})


class Trainer:
    """Trains one run folder. Use :func:`train` unless you need the pieces."""

    def __init__(self, run_dir: str | Path, dataset: Dataset | None = None, callback: Callback | None = None):
        self.run_dir = Path(run_dir)
        self.model_cfg, self.cfg, self.data_cfg = rf.load_config(self.run_dir)
        self.dataset = dataset
        self.callback = callback
        self.stop_requested = False
        self._control_mtime = 0
        self._frame_elapsed = 0.0  # training seconds at the last history frame
        self._status: dict = rf.read_status(self.run_dir)

    # ------------------------------------------------------------ bookkeeping

    def status(self, state: str, message: str = "", **extra) -> None:
        self._status.update({"state": state, "message": message, "pid": os.getpid(), "updated": time.time(), **extra})
        rf.write_status(self.run_dir, self._status)
        if self.callback:
            self.callback("status", dict(self._status))

    def log(self, record: dict) -> None:
        record = {**record, "time": time.time()}
        rf.append_metric(self.run_dir, record)
        if self.callback:
            self.callback(record["type"], record)

    def _poll_control(self) -> str:
        mtime = rf.control_mtime(self.run_dir)
        if mtime is None:
            return "stop" if self.stop_requested else ""
        if mtime != self._control_mtime:
            self._control_mtime = mtime
            self._command = rf.read_control(self.run_dir)
        return "stop" if self.stop_requested else getattr(self, "_command", "")

    # ------------------------------------------------------------ set-up

    def _setup(self, resume: bool) -> None:
        rf.remove_temp_files(self.run_dir)
        torch.set_num_threads(self.cfg.threads)
        torch.set_flush_denormal(True)  # Adam averages of dead pixels decay into slow denormals
        if self.dataset is None:
            self.status("running", "loading data", epoch=0, step=0)
            self.dataset = load_dataset(rf.load_data_config(self.run_dir))
        if tuple(self.dataset.item_shape) != tuple(self.model_cfg.input_shape):
            raise ValueError(
                f"The model expects items of shape {self.model_cfg.input_shape} but the data "
                f"{self.dataset.name!r} has items of shape {self.dataset.item_shape}."
            )
        self.x_train = self.dataset.x_train.float().contiguous()
        self.x_test = self.dataset.x_test.float().contiguous()
        torch.manual_seed(self.cfg.seed)
        self.model: VAE = build_model(self.model_cfg)
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=True
        )
        self.gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        self.state = _LoopState()
        if resume and rf.has_state(self.run_dir):
            self._load_state()
        elif resume:
            raise FileNotFoundError(f"{self.run_dir.name} has no checkpoint to resume from; start it anew.")
        else:  # a fresh start: earlier metrics (of a run restarted from scratch) no longer apply
            rf.write_metrics(self.run_dir, [])
        g = torch.Generator().manual_seed(self.cfg.seed + 3)
        self.z_samples = torch.randn(self.cfg.grid_size**2, self.model_cfg.latent_dim, generator=g)
        self._steps_per_epoch = math.ceil(len(self.x_train) / self.cfg.batch_size)
        self._setup_history(resume)

    def _setup_history(self, resume: bool) -> None:
        """The probe set (kept across resumes) and the frame of the moment training starts or resumes at."""
        ds, step = self.dataset, self.state.step
        self.x_probe = history.prepare(self.run_dir, ds, self.x_test, self.x_train, self.cfg, step if resume else None)
        if self.x_probe is not None and not any(f.step == step for f in history.frames(self.run_dir)):
            self.record_frame()

    def _save_state(self) -> None:
        """Checkpoint: full resume state first, then the weights the UI loads (each atomic)."""
        s = self.state
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        for i, st in self.opt.state_dict()["state"].items():
            for k, v in st.items():
                tensors[f"optim.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
        tensors["rng.gen"] = self.gen.get_state()
        if s.perm is not None:
            tensors["loop.perm"] = s.perm
        meta = {"epoch": s.epoch, "pos": s.pos, "step": s.step, "elapsed": s.elapsed, "sums": s.sums}
        rf.save_state(self.run_dir, tensors, json.dumps(meta))
        rf.save_model(self.run_dir, self.model, {"epoch": str(s.epoch), "step": str(s.step)})

    def _load_state(self) -> None:
        tensors, loop = rf.load_state(self.run_dir)
        meta = json.loads(loop)
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        check_state_dict(self.model, weights, rf.state_label(self.run_dir))
        self.model.load_state_dict(weights, strict=True)
        opt_state = self.opt.state_dict()
        per_param: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, i, name = k.split(".", 2)
                per_param.setdefault(int(i), {})[name] = v
        opt_state["state"] = per_param
        self.opt.load_state_dict(opt_state)
        self.gen.set_state(tensors["rng.gen"])
        self.state = _LoopState(
            epoch=int(meta["epoch"]),
            pos=int(meta["pos"]),
            step=int(meta["step"]),
            elapsed=float(meta["elapsed"]),
            perm=tensors.get("loop.perm"),
            sums=dict(meta["sums"]),
        )
        # Metrics written after this checkpoint describe steps that will be redone: drop them.
        kept = [m for m in rf.read_metrics(self.run_dir) if m.get("step", 0) <= self.state.step]
        rf.write_metrics(self.run_dir, kept)

    # ------------------------------------------------------------ evaluation and pictures

    def evaluate_test(self) -> dict:
        """One-sample test ELBO parts (nats per example) with a fixed noise seed, the KL of each latent
        dimension and the active units (Burda et al. 2015) on the first test items: what the collapse alarm reads."""
        if not len(self.x_test):
            return {}
        self.model.eval()
        parts = {f"test_{k}": v for k, v in elbo(self.model, self.x_test, EVAL_BATCH, seed=self.cfg.seed + 2).items()}
        mu, logvar = encode(self.model, self.x_test[:EVAL_BATCH])  # (n, latent_dim) each
        parts["test_kl_per_dim"] = kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).tolist()
        parts["active_units"] = active_units(mu)[0]
        self.model.train()
        return parts

    @torch.inference_mode()
    def record_frame(self, test_elbo: float | None = None) -> None:
        """Encode the probe set (and decode the fixed prior samples) into the next history frame."""
        if self.x_probe is None:
            return
        self.model.eval()
        mu, _ = self.model.encode(self.x_probe)  # (P, latent_dim)
        samples = self.model.decode(self.z_samples) if self.model_cfg.is_image else None  # (S, C, H, W)
        s = self.state
        epoch = s.epoch + s.pos / max(1, self._steps_per_epoch)
        meta = {"epoch": epoch, "step": s.step, "elapsed": s.elapsed, "time": time.time(), "test_elbo": test_elbo}
        history.write_frame(self.run_dir, mu, samples, meta)
        self._frame_elapsed = s.elapsed
        self.model.train()

    @torch.inference_mode()
    def save_pictures(self) -> None:
        """Reconstructions of the first test items (originals above) and prior samples."""
        if not self.model_cfg.is_image:
            return
        self.model.eval()
        k = self.cfg.grid_size
        x = self.x_test[:k]
        mu, _ = self.model.encode(x)
        recon = self.model.decode(mu)
        pair = torch.cat([x, recon]).numpy()  # (2k, C, H, W)
        rf.write_picture(self.run_dir, "recon", png_bytes(make_grid(pair, k), scale=2))
        samples = self.model.decode(self.z_samples).numpy()  # (k*k, C, H, W)
        rf.write_picture(self.run_dir, "samples", png_bytes(make_grid(samples, k), scale=2))
        self.model.train()

    # ------------------------------------------------------------ the loop

    def _wait_while_paused(self) -> None:
        self._save_state()
        self.status("paused", "paused by request", epoch=self.state.epoch, step=self.state.step)
        while True:
            command = self._poll_control()
            if command == "stop":
                raise _Stop
            if command != "pause":
                self.status("running", "", epoch=self.state.epoch, step=self.state.step)
                return
            time.sleep(0.2)

    def _beta(self, steps_per_epoch: int) -> float:
        if self.cfg.warmup_epochs <= 0:
            return self.cfg.beta
        progress = self.state.epoch + self.state.pos / steps_per_epoch
        return self.cfg.beta * min(1.0, progress / self.cfg.warmup_epochs)

    def _run_epoch(self, steps_per_epoch: int, total_steps: int, t_session: float, steps_session: list) -> None:
        s, bs, n = self.state, self.cfg.batch_size, len(self.x_train)
        if s.perm is None:
            s.perm = torch.randperm(n, generator=self.gen)
        window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0}
        t_epoch = time.perf_counter()
        while s.pos < steps_per_epoch:
            command = self._poll_control()
            if command == "stop":
                raise _Stop
            if command == "pause":
                self._wait_while_paused()
            t0 = time.perf_counter()
            xb = self.x_train[s.perm[s.pos * bs : (s.pos + 1) * bs]]  # (B, *input_shape)
            beta = self._beta(steps_per_epoch)
            terms = elbo_terms(self.model, xb, beta, self.gen, self.cfg.free_bits)
            loss = terms["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(divergence_message(self.model_cfg, self.cfg, s.epoch, s.step))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            s.elapsed += time.perf_counter() - t0
            s.pos += 1
            s.step += 1
            steps_session[0] += 1
            b = len(xb)
            with torch.no_grad():
                values = {"loss": float(loss) * b, "recon": float(terms["recon"].sum()), "kl": float(terms["kl"].sum())}
            for d in (window, s.sums):
                for k, v in values.items():
                    d[k] += v
                d["n"] += b
            if s.elapsed - self._frame_elapsed >= history.FRAME_SECONDS and s.pos < steps_per_epoch:
                self.record_frame()  # a long epoch: a frame every FRAME_SECONDS of training too
            if s.step % self.cfg.log_every == 0:
                rate = steps_session[0] / max(1e-9, time.perf_counter() - t_session)
                eta = (total_steps - s.step) / max(rate, 1e-9)
                w = window["n"]
                self.log(
                    {
                        "type": "step",
                        "epoch": s.epoch + s.pos / steps_per_epoch,
                        "step": s.step,
                        "loss": window["loss"] / w,
                        "recon": window["recon"] / w,
                        "kl": window["kl"] / w,
                        "beta": beta,
                        "examples_per_s": rate * bs,
                        "eta_s": eta,
                    }
                )
                self.status("running", "", epoch=s.epoch, step=s.step, total_steps=total_steps, eta_s=eta)
                window = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0}
        self._finish_epoch(time.perf_counter() - t_epoch, total_steps, t_session, steps_session)

    def _finish_epoch(self, seconds: float, total_steps: int, t_session: float, steps_session: list) -> None:
        s = self.state
        n = max(1, s.sums["n"])
        train = {f"train_{k}": s.sums[k] / n for k in ("loss", "recon", "kl")}
        s.epoch, s.pos, s.perm = s.epoch + 1, 0, None
        s.sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0}
        rate = steps_session[0] / max(1e-9, time.perf_counter() - t_session)
        eta = (total_steps - s.step) / max(rate, 1e-9)
        record = {
            "type": "epoch",
            "epoch": s.epoch,
            "step": s.step,
            **train,
            "train_elbo": -(train["train_recon"] + train["train_kl"]),
            **self.evaluate_test(),
            "epoch_seconds": seconds,
            "elapsed_s": s.elapsed,
            "examples_per_s": len(self.x_train) / max(seconds, 1e-9),
            "eta_s": eta,
        }
        self._save_state()
        self.save_pictures()
        self.record_frame(record.get("test_elbo"))
        self.log(record)
        self.status("running", "", epoch=s.epoch, step=s.step, total_steps=total_steps, eta_s=eta)

    def _report_write_failure(self, e: OSError) -> None:
        msg = (
            f"Could not write to the run folder ({e.strerror or e}): free some disk space or make the folder "
            "writable, then resume. The last checkpoint that was written completely is kept."
        )
        try:
            self.status("failed", msg, epoch=self.state.epoch if hasattr(self, "state") else 0)
        except OSError:
            print(msg, flush=True)  # the status file itself cannot be written: the log says why

    def run(self, resume: bool = False) -> dict:
        """Train to the configured number of epochs (or until stopped); returns the final status.

        A resume whose state is missing or damaged raises ``ValueError`` / ``FileNotFoundError`` and leaves
        the run's recorded status as it was.
        """
        before = dict(self._status)
        if resume:
            rf.check_state(self.run_dir)  # before anything is written
        self.status("running", "starting", epoch=before.get("epoch", 0) if resume else 0, step=0)
        try:
            try:
                self._setup(resume)
            except (ValueError, FileNotFoundError) as e:
                if not resume:
                    raise
                self._status = before
                rf.write_status(self.run_dir, before)  # a failed resume leaves the run as it was
                raise ValueError(f"{self.run_dir.name} could not be resumed: {e}") from None
            n = len(self.x_train)
            steps_per_epoch = math.ceil(n / self.cfg.batch_size)
            total_steps = steps_per_epoch * self.cfg.epochs
            self.status("running", "", epoch=self.state.epoch, step=self.state.step, total_steps=total_steps)
            self.model.train()
            t_session, steps_session = time.perf_counter(), [0]
            while self.state.epoch < self.cfg.epochs:
                self._run_epoch(steps_per_epoch, total_steps, t_session, steps_session)
            self.status("finished", "training finished", epoch=self.state.epoch, step=self.state.step, eta_s=0)
        except _Stop:
            self._save_state()
            self.status("stopped", "stopped by request", epoch=self.state.epoch, step=self.state.step)
        except FloatingPointError as e:
            self.status("failed", str(e), epoch=self.state.epoch, step=self.state.step)
        except (ValueError, FileNotFoundError) as e:
            if self._status is before:
                raise
            self.status("failed", str(e))
        except OSError as e:  # a full disk or a folder that cannot be written
            self._report_write_failure(e)
        except Exception as e:  # the status must say what happened, whatever it was
            traceback.print_exc()
            self.status("failed", f"Training failed unexpectedly: {type(e).__name__}: {e}")
        return dict(self._status)


def train(
    run_dir: str | Path,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    callback: Callback | None = None,
    handle_signals: bool = False,
) -> dict:
    """Train (or resume) the run in ``run_dir``; returns its final status dict.

    With ``handle_signals`` (the background worker), SIGTERM and SIGINT stop the run gracefully,
    saving a checkpoint first.
    """
    trainer = Trainer(run_dir, dataset=dataset, callback=callback)
    if handle_signals:

        def _request_stop(signum, frame):
            trainer.stop_requested = True

        signal.signal(signal.SIGTERM, _request_stop)
        signal.signal(signal.SIGINT, _request_stop)
    return trainer.run(resume=resume)


def new_run(
    root: str | Path,
    name: str,
    dataset: Dataset,
    data_cfg,
    *,
    train_cfg: TrainConfig | None = None,
    **model: object,
) -> Path:
    """Create a run folder for ``dataset`` with a model shaped to its items.

    ``model`` sets ModelConfig fields (arch, latent_dim, hidden, channels, likelihood, ...); the rest keep
    ModelConfig's defaults, except the likelihood, which defaults to the dataset's suggestion (Bernoulli
    for images in [0, 1], Gaussian for standardised vectors).
    """
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in model.items() if v is not None}
    fields.setdefault("likelihood", dataset.likelihood)
    model_cfg = ModelConfig(input_shape=tuple(dataset.item_shape), **fields)
    return rf.create_run(root, name, model_cfg, train_cfg or TrainConfig(), data_cfg)
