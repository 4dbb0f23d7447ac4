"""Training past one process: the device, and PyTorch's own distributed engine (torchrun + DistributedDataParallel).

``torchrun --nproc_per_node=N -m vae train ...`` starts N copies of the command line; each finds its rank in
the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and
``Ranks.from_env`` joins the process group (gloo on CPU, NCCL on CUDA). Every rank draws the same global
permutation and the same noise from the same seed, takes its own shard of each global batch (``shard``) and
DistributedDataParallel averages the gradients, so N ranks at batch B train like one process at batch N·B.
Rank 0 alone writes the run folder; it reads the control file and ``command`` hands its decision to every
rank. A single process is a ``Ranks`` of one, where every call is a no-op.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from .launch import LAUNCHED, STORE_FD

DEVICES = ("auto", "cpu", "cuda")
COMMANDS = ("", "pause", "stop")
TIMEOUT = datetime.timedelta(minutes=10)  # a rank that waits longer than this for the others fails the run


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot products in hardware (AVX-512 BF16 or AMX, read from /proc/cpuinfo):
    there, training under bfloat16 autocast ran 1.3-1.7x faster at the same ELBO (bench/bench_recipe.py); elsewhere
    bfloat16 is emulated and slower. False where the flags cannot be read (not Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu`` or ``cuda``; a sentence when CUDA is asked for and absent."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {name!r}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but this machine has no CUDA GPU that PyTorch can use "
                         f"(torch {torch.__version__}); use --device cpu or auto.")  # fmt: skip
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _loopback_store(world: int) -> dist.TCPStore:
    """The process group's store, on 127.0.0.1: rank 0 serves it on the socket ``vae.launch`` bound and handed down
    (``STORE_FD``), the others connect to it."""
    rank, fd = int(os.environ["RANK"]), os.environ.pop(STORE_FD, None)
    listen_fd = int(fd) if fd is not None and rank == 0 else None
    return dist.TCPStore("127.0.0.1", int(os.environ["MASTER_PORT"]), world, rank == 0, timeout=TIMEOUT,
                         master_listen_fd=listen_fd)  # fmt: skip


@dataclass
class Ranks:
    """This process's place among the training processes (a world of one without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> Ranks:
        """Join the process group torchrun describes in the environment; a world of one without it."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
            if os.environ.get(LAUNCHED):  # vae.launch: the store on 127.0.0.1 only
                dist.init_process_group(backend=backend, timeout=TIMEOUT, store=_loopback_store(world),
                                        rank=int(os.environ["RANK"]), world_size=world)  # fmt: skip
            else:  # torchrun (one machine or several): its own store
                dist.init_process_group(backend=backend, timeout=TIMEOUT)
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder (rank 0)."""
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n``: near-equal contiguous parts, rank 0 first."""
        per, extra = divmod(n, self.world)
        start = self.rank * per + min(self.rank, extra)
        return slice(start, start + per + (self.rank < extra))

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model DistributedDataParallel averages gradients for (the model itself in a world of one)."""
        if self.world == 1:
            return model
        ids = [device.index or self.local_rank] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def command(self, local: str, stop: bool = False) -> str:
        """The command every rank follows, in one collective: "stop" if any rank was asked to stop (``stop``),
        else rank 0's control command ("", "pause" or "stop"; "resume" and the like mean go on)."""
        if self.world == 1:
            return "stop" if stop else local
        code = COMMANDS.index(local) if self.main and local in COMMANDS else 0
        t = torch.tensor([int(stop), code], dtype=torch.int64)
        dist.all_reduce(t)  # rank 0 alone contributes a command; any rank may contribute a stop
        return "stop" if t[0] else COMMANDS[int(t[1])]

    def sums(self, values: dict[str, float]) -> dict[str, float]:
        """``values`` summed over every rank (each rank's share of the batch's loss terms)."""
        if self.world == 1:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist(), strict=True))

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's ``text`` on every rank (the run folder's name a new run got)."""
        if self.world == 1:
            return text or ""
        box = [text]
        dist.broadcast_object_list(box, src=0)
        return box[0] or ""

    def close(self) -> None:
        """Leave the process group together (a rank leaving while another still talks aborted it here), after
        the DistributedDataParallel wrapper is gone (its reducer holds the group's threads)."""
        if self.world > 1 and dist.is_initialized():
            gc.collect()
            try:
                dist.barrier()
            except RuntimeError:  # another rank is already gone: nothing left to wait for
                pass
            dist.destroy_process_group()
