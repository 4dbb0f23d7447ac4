"""A training run's full resume state: weights, Adam's moments, the random generator and the loop's place.

Written by rank 0 into the run folder (``rf.save_state``, atomic) together with the weights the app loads;
read back by every rank on ``--resume``, so a resumed run continues exactly where the checkpoint left it
(bit-identical to an uninterrupted run, in a world of the same size). Tensors are saved from the CPU and
loaded back onto the model's device, so a checkpoint never depends on where it was trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..models import VAE, check_state_dict
from . import folder as rf


@dataclass
class LoopState:
    """Everything besides weights and optimiser needed to resume exactly."""

    epoch: int = 0  # completed epochs
    pos: int = 0  # batches done in the current epoch
    step: int = 0  # optimiser steps in total
    elapsed: float = 0.0  # seconds spent training, over all sessions
    perm: torch.Tensor | None = None
    sums: dict = field(default_factory=lambda: {"loss": 0.0, "recon": 0.0, "kl": 0.0, "n": 0})


def save(run_dir: Path, model: VAE, opt: torch.optim.Optimizer, gen: torch.Generator, s: LoopState, world: int) -> None:
    """Checkpoint: the full resume state first, then the weights the UI loads (each atomic)."""
    tensors = {f"model.{k}": v.detach().cpu() for k, v in model.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            tensors[f"optim.{i}.{k}"] = v.detach().cpu() if torch.is_tensor(v) else torch.tensor(v)
    tensors["rng.gen"] = gen.get_state()
    if s.perm is not None:
        tensors["loop.perm"] = s.perm.cpu()
    meta = {"epoch": s.epoch, "pos": s.pos, "step": s.step, "elapsed": s.elapsed, "sums": s.sums, "world": world}
    rf.save_state(run_dir, tensors, json.dumps(meta))
    rf.save_model(run_dir, model, {"epoch": str(s.epoch), "step": str(s.step)})


def load(
    run_dir: Path, model: VAE, opt: torch.optim.Optimizer, gen: torch.Generator, world: int, main: bool = True
) -> LoopState:
    """Restore ``model``, ``opt`` and ``gen`` from the run's checkpoint; returns the loop's place. Only the
    ``main`` process (rank 0) trims the metrics to the checkpoint."""
    tensors, loop = rf.load_state(run_dir)
    meta = json.loads(loop)
    if int(meta.get("world", 1)) != world:
        raise ValueError(f"it was trained by {meta.get('world', 1)} process(es) and is resumed by {world}: resume "
                         "it with as many (torchrun --nproc_per_node), so that its batches stay the same.")  # fmt: skip
    device = next(model.parameters()).device
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    check_state_dict(model, weights, rf.state_label(run_dir))
    model.load_state_dict(weights, strict=True)
    opt_state = opt.state_dict()
    per_param: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            per_param.setdefault(int(i), {})[name] = v.to(device) if name != "step" else v
    opt_state["state"] = per_param
    opt.load_state_dict(opt_state)
    gen.set_state(tensors["rng.gen"])
    state = LoopState(
        epoch=int(meta["epoch"]),
        pos=int(meta["pos"]),
        step=int(meta["step"]),
        elapsed=float(meta["elapsed"]),
        perm=tensors.get("loop.perm"),
        sums=dict(meta["sums"]),
    )
    # Metrics written after this checkpoint describe steps that will be redone: drop them (rank 0 writes).
    kept = [m for m in rf.read_metrics(run_dir) if m.get("step", 0) <= state.step]
    if main:
        rf.write_metrics(run_dir, kept)
    return state
