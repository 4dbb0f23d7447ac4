"""Training: whole dataset in memory, a random permutation per epoch, Adam, and a run folder.

``train(run_dir)`` trains the run described by ``run_dir/config.json`` and writes into that
folder: ``metrics.jsonl`` (a line every ``log_every`` steps and one per epoch), ``status.json``,
``model.safetensors`` + ``state.safetensors`` (every epoch, on pause/stop and at the end) and
``recon.png`` / ``samples.png`` per epoch. Another process steers it through ``control.json``
(``{"command": "pause" | "resume" | "stop"}``) or SIGTERM. ``resume=True`` continues exactly
where the last checkpoint left off (optimiser, permutation and random state included).
"""

from __future__ import annotations

import copy
import math
import os
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from .analysis import history
from .analysis.evaluate import active_units, elbo
from .data import Dataset, load_dataset
from .distributed import Ranks, resolve_device
from .images import make_grid, png_bytes
from .models import VAE, build_model
from .objectives import divergence_message, family_terms, kl_per_dim
from .runs import folder as rf
from .runs import resume_state

EVAL_BATCH = 1000
KL_PARTS = {"mi": "index_code_mi", "tc": "total_correlation", "dwkl": "dimension_wise_kl"}  # β-TCVAE's, as recorded
CONTROL_EVERY = 16  # steps between agreeing on the control command when several processes train
Callback = Callable[[str, dict], None]


class _Stop(Exception):
    """Raised inside the loop when a stop was requested."""


class Trainer:
    """Trains one run folder. Use :func:`train` unless you need the pieces."""

    def __init__(
        self,
        run_dir: str | Path,
        dataset: Dataset | None = None,
        callback: Callback | None = None,
        device: str = "auto",
        ranks: Ranks | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.device = resolve_device(device)
        self.ranks = ranks or Ranks()
        self.model_cfg, self.cfg, self.data_cfg = rf.load_config(self.run_dir)
        self.dataset = dataset
        self.callback = callback
        self.stop_requested = False
        self._control_mtime = 0
        self._frame_elapsed = 0.0  # training seconds at the last history frame
        self._status: dict = rf.read_status(self.run_dir)

    # ------------------------------------------------------------ bookkeeping

    def status(self, state: str, message: str = "", **extra) -> None:
        if not self.ranks.main:
            return  # rank 0 alone writes the run folder
        extra |= {"device": self.device.type, "processes": self.ranks.world}
        self._status.update({"state": state, "message": message, "pid": os.getpid(), "updated": time.time(), **extra})
        rf.write_status(self.run_dir, self._status)
        if self.callback:
            self.callback("status", dict(self._status))

    def log(self, record: dict) -> None:
        if not self.ranks.main:
            return
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
        if self.ranks.main:
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
        dtype = self.dtype
        self.x_train = self.dataset.x_train.to(dtype).contiguous().to(self.device)  # moved once, not per batch
        self.x_test = self.dataset.x_test.to(dtype).contiguous()  # evaluation, pictures, history: on the CPU
        torch.manual_seed(self.cfg.seed)
        self.model: VAE = build_model(self.model_cfg).to(self.device, dtype)
        self.model.start_pseudo_inputs(self.x_train, self.cfg.seed + 4)  # a resume loads its own below
        self.y_test = self.model.split_labels(self.dataset, "test")  # a conditional VAE's labels, else None
        self.y_train = self.model.split_labels(self.dataset, "train")
        self.y_train = None if self.y_train is None else torch.as_tensor(self.y_train).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr, betas=(0.9, self.cfg.adam_beta2),
                                    weight_decay=self.cfg.weight_decay, fused=True)  # fmt: skip
        self.gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        self.state = resume_state.LoopState()
        if resume and rf.has_state(self.run_dir):
            self._load_state()
        elif resume:
            raise FileNotFoundError(f"{self.run_dir.name} has no checkpoint to resume from; start it anew.")
        elif self.ranks.main:  # a fresh start: earlier metrics (of a run restarted from scratch) no longer apply
            rf.write_metrics(self.run_dir, [])
        self.train_model = self.ranks.wrap(self.model, self.device)  # DDP averages gradients over the ranks
        g = torch.Generator().manual_seed(self.cfg.seed + 3)
        self.z_samples = torch.randn(self.cfg.grid_size**2, self.model_cfg.latent_dim, generator=g).to(dtype)
        self._steps_per_epoch = math.ceil(len(self.x_train) / self.global_batch)
        self._log_every = min(self.cfg.log_every, max(1, self._steps_per_epoch // 2))  # 2 points an epoch at least
        self.x_probe = None
        if self.ranks.main:
            self._setup_history(resume)

    @property
    def dtype(self) -> torch.dtype:
        """The weights' and data's type: float64 for ``precision="fp64"``, else float32 (bf16 is autocast)."""
        return torch.float64 if self.cfg.precision == "fp64" else torch.float32

    @property
    def global_batch(self) -> int:
        """Rows per optimiser step over all ranks: ``batch_size`` for each."""
        return self.cfg.batch_size * self.ranks.world

    def _setup_history(self, resume: bool) -> None:
        """The probe set (kept across resumes) and the frame of the moment training starts or resumes at."""
        ds, step = self.dataset, self.state.step
        probe = history.prepare(self.run_dir, ds, self.x_test, ds.x_train, self.cfg, step if resume else None)
        self.x_probe = None if probe is None else probe.to(self.dtype)
        self.y_probe = None if probe is None or not self.model.conditional else history.read_probe(self.run_dir)[1]
        if self.x_probe is not None and not any(f.step == step for f in history.frames(self.run_dir)):
            self.record_frame()

    def _empty_sums(self) -> dict:
        """An epoch's or a log window's running sums, with the family's own terms (the same keys on every rank)."""
        parts = dict.fromkeys(KL_PARTS, 0.0) if self.model_cfg.family == "beta-tcvae" else {}
        return {"loss": 0.0, "recon": 0.0, "kl": 0.0, **parts, "n": 0}

    def _save_state(self) -> None:
        """Checkpoint (rank 0 only): the full resume state first, then the weights the UI loads (each atomic)."""
        if self.ranks.main:
            resume_state.save(self.run_dir, self.model, self.opt, self.gen, self.state, self.ranks.world)

    def _load_state(self) -> None:
        self.state = resume_state.load(self.run_dir, self.model, self.opt, self.gen, self.ranks.world, self.ranks.main)
        if not self.ranks.main:  # the partial epoch sums are rank 0's share: the others start theirs at zero
            self.state.sums = self._empty_sums()

    # ------------------------------------------------------------ evaluation and pictures

    def _cpu_model(self) -> VAE:
        """The model on the CPU, for evaluation and pictures (a copy when training runs on a GPU)."""
        return self.model if self.device.type == "cpu" else copy.deepcopy(self.model).cpu()

    def evaluate_test(self) -> dict:
        """One-sample test ELBO parts (nats per example) with a fixed noise seed, the KL of each latent
        dimension and the active units (Burda et al. 2015) on the first test items: what the collapse alarm reads."""
        if not len(self.x_test):
            return {}
        m = self._cpu_model().eval()
        y = self.y_test
        parts = {f"test_{k}": v for k, v in elbo(m, self.x_test, EVAL_BATCH, seed=self.cfg.seed + 2, y=y).items()}
        mu, logvar = m.embed(self.x_test[:EVAL_BATCH], None if y is None else y[:EVAL_BATCH])  # (n, latent_dim)
        parts["test_kl_per_dim"] = kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).tolist()
        parts["active_units"] = active_units(mu)[0]
        self.model.train()
        return parts

    def sample_labels(self) -> torch.Tensor | None:
        """A conditional VAE's classes for the pictures' prior samples: row r of the grid is class r."""
        rows = torch.arange(len(self.z_samples)) // self.cfg.grid_size
        return rows % self.model_cfg.classes if self.model.conditional else None

    @torch.inference_mode()
    def record_frame(self, test_elbo: float | None = None) -> None:
        """Encode the probe set (and decode the fixed prior samples) into the next history frame."""
        if self.x_probe is None:
            return
        m = self._cpu_model().eval()
        mu, _ = m.encode(self.x_probe, self.y_probe)  # (P, latent_dim)
        samples = m.decode(m.prior_points(self.z_samples), self.sample_labels()) if self.model_cfg.is_image else None
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
        m = self._cpu_model().eval()
        k = self.cfg.grid_size
        x, y = self.x_test[:k], None if self.y_test is None else self.y_test[:k]
        mu, _ = m.encode(x, y)
        recon = m.decode(mu, y)
        pair = torch.cat([x, recon]).numpy()  # (2k, C, H, W)
        rf.write_picture(self.run_dir, "recon", png_bytes(make_grid(pair, k), scale=2))
        samples = m.decode(m.prior_points(self.z_samples), self.sample_labels()).numpy()  # (k*k, C, H, W)
        rf.write_picture(self.run_dir, "samples", png_bytes(make_grid(samples, k), scale=2))
        self.model.train()

    # ------------------------------------------------------------ the loop

    def _wait_while_paused(self) -> None:
        self._save_state()
        self.status("paused", "paused by request", epoch=self.state.epoch, step=self.state.step)
        while True:
            command = self._agreed_command()
            if command == "stop":
                raise _Stop
            if command != "pause":
                self.status("running", "", epoch=self.state.epoch, step=self.state.step)
                return
            time.sleep(0.2)

    def _agreed_command(self, now: bool = True) -> str:
        """Rank 0's control command, followed by every rank (a stop asked of any rank stops all); agreed every
        CONTROL_EVERY steps between processes (a collective every step cost two thirds of the pace)."""
        if not now and self.ranks.world > 1 and self.state.step % CONTROL_EVERY:
            return ""
        return self.ranks.command(self._poll_control(), self.stop_requested)

    def _run_epoch(self, steps_per_epoch: int, total_steps: int, t_session: float, steps_session: list) -> None:
        s, bs, n = self.state, self.global_batch, len(self.x_train)
        family = self.model_cfg.family
        if s.perm is None:
            s.perm = torch.randperm(n, generator=self.gen)  # the same on every rank: one seed
        window = self._empty_sums()
        t_epoch = time.perf_counter()
        while s.pos < steps_per_epoch:
            command = self._agreed_command(now=False)
            if command == "stop":
                raise _Stop
            if command == "pause":
                self._wait_while_paused()
            t0 = time.perf_counter()
            rows = s.perm[s.pos * bs : (s.pos + 1) * bs]  # the global batch, (G,)
            samples = (self.cfg.iwae_k,) if family == "iwae" else ()  # the IWAE family: K samples per item
            eps = torch.randn((*samples, len(rows), self.model_cfg.latent_dim), generator=self.gen).to(self.dtype)
            mine = self.ranks.shard(len(rows))  # this rank's rows of it (every rank draws the global batch's noise)
            xb = self.x_train[rows[mine].to(self.device)]  # (B, *input_shape)
            yb = None if self.y_train is None else self.y_train[rows[mine].to(self.device)]
            beta = self.cfg.beta_at(s.epoch + s.pos / steps_per_epoch)
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.cfg.precision == "bf16"):
                terms = family_terms(self.train_model, xb, family, beta, self.cfg.free_bits,
                                     eps=eps[..., mine, :].to(self.device), dataset_size=n, y=yb)  # fmt: skip
            # each rank's mean, weighted by its share: DDP's average of the gradients is the global batch's
            loss = terms["loss"] * (len(xb) * self.ranks.world / len(rows)) if self.ranks.world > 1 else terms["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(divergence_message(self.model_cfg, self.cfg, s.epoch, s.step))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            for group in self.opt.param_groups:  # the schedule is a function of the step: resumes continue it
                group["lr"] = self.cfg.lr_at(s.step, total_steps, steps_per_epoch)
            self.opt.step()
            s.elapsed += time.perf_counter() - t0
            s.pos += 1
            s.step += 1
            steps_session[0] += 1
            b = len(xb)
            with torch.no_grad():
                values = {"loss": float(loss) * b, "recon": float(terms["recon"].sum()), "kl": float(terms["kl"].sum())}
                values.update({k: float(terms[k].sum()) for k in KL_PARTS if k in terms})  # β-TCVAE's three parts
            for d in (window, s.sums):
                for k, v in values.items():
                    d[k] = d.get(k, 0.0) + v
                d["n"] += b
            if s.elapsed - self._frame_elapsed >= history.FRAME_SECONDS and s.pos < steps_per_epoch:
                self.record_frame()  # a long epoch: a frame every FRAME_SECONDS of training too
            if s.step % self._log_every == 0:
                rate = steps_session[0] / max(1e-9, time.perf_counter() - t_session)
                eta = (total_steps - s.step) / max(rate, 1e-9)
                window = self.ranks.sums({**self._empty_sums(), **window})  # every rank's share of the window
                w = window["n"]
                self.log({
                    "type": "step", "epoch": s.epoch + s.pos / steps_per_epoch, "step": s.step,
                    **{k: window[k] / w for k in ("loss", "recon", "kl")},
                    **{KL_PARTS[k]: window[k] / w for k in KL_PARTS if k in window},
                    "beta": beta, "lr": self.opt.param_groups[0]["lr"], "examples_per_s": rate * bs, "eta_s": eta,
                })  # fmt: skip
                self.status("running", "", epoch=s.epoch, step=s.step, total_steps=total_steps, eta_s=eta)
                window = self._empty_sums()
        self._finish_epoch(time.perf_counter() - t_epoch, total_steps, t_session, steps_session)

    def _finish_epoch(self, seconds: float, total_steps: int, t_session: float, steps_session: list) -> None:
        s = self.state
        sums = self.ranks.sums({**self._empty_sums(), **s.sums})  # every rank's share of the epoch (same keys)
        n = max(1, sums["n"])
        train = {f"train_{k}": sums[k] / n for k in ("loss", "recon", "kl")}
        train.update({f"train_{KL_PARTS[k]}": sums[k] / n for k in KL_PARTS if k in sums})
        s.epoch, s.pos, s.perm = s.epoch + 1, 0, None
        s.sums = self._empty_sums()
        rate = steps_session[0] / max(1e-9, time.perf_counter() - t_session)
        eta = (total_steps - s.step) / max(rate, 1e-9)
        record = {
            "type": "epoch", "epoch": s.epoch, "step": s.step, **train,
            "train_elbo": -(train["train_recon"] + train["train_kl"]),
            **(self.evaluate_test() if self.ranks.main else {}),
            "epoch_seconds": seconds, "elapsed_s": s.elapsed, "examples_per_s": len(self.x_train) / max(seconds, 1e-9),
            "eta_s": eta,
        }  # fmt: skip
        # the record before the checkpoint: a kill between them leaves a record of steps the resume redoes (and
        # drops), never a checkpoint whose epoch has no record
        self.log(record)
        self._save_state()
        self.save_pictures()
        self.record_frame(record.get("test_elbo"))
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
            steps_per_epoch = self._steps_per_epoch
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
            message = f"Training failed unexpectedly: {type(e).__name__}: {e}"
            if self.ranks.world > 1:  # most likely another rank died: gloo / NCCL report it here
                epoch = self.state.epoch if hasattr(self, "state") else 0
                message = (f"One of the {self.ranks.world} training processes ended or lost touch with the others "
                           f"({type(e).__name__}); the checkpoint of epoch {epoch} loads, and --resume continues "
                           "from it.")  # fmt: skip
            self.status("failed", message)
        return dict(self._status)


def train(
    run_dir: str | Path,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    callback: Callback | None = None,
    handle_signals: bool = False,
    device: str = "auto",
    ranks: Ranks | None = None,
) -> dict:
    """Train (or resume) the run in ``run_dir`` on ``device`` (``vae.distributed.resolve_device``), as one of
    ``ranks`` under torchrun; returns its final status dict.

    With ``handle_signals`` (the background worker), SIGTERM and SIGINT stop the run, saving a checkpoint first.
    """
    trainer = Trainer(run_dir, dataset=dataset, callback=callback, device=device, ranks=ranks)
    if handle_signals:

        def _request_stop(signum, frame):
            trainer.stop_requested = True

        signal.signal(signal.SIGTERM, _request_stop)
        signal.signal(signal.SIGINT, _request_stop)
    return trainer.run(resume=resume)
