"""Several training processes on this machine, talking over 127.0.0.1 only: ``python -m vae.launch N ARGS...``.

torchrun's rendezvous store listens on every network interface (``*:PORT``), and so would gloo's sockets, so a
single-machine run would be reachable from the network. Here the store's socket is bound to 127.0.0.1 by this
launcher and handed to rank 0 (``TCPStore(master_listen_fd=)``), the other ranks connect to it there, and gloo
is told to use the loopback interface (``GLOO_SOCKET_IFNAME``). Each rank is ``python -m vae ARGS...`` with the
environment torchrun would give it (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``),
and ``vae.distributed.Ranks.from_env`` joins the group. When one rank fails the others are ended; SIGTERM and
SIGINT are passed on. Across machines, torchrun itself is still the way (README).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

STORE_FD = "LATENT_EXPLORER_STORE_FD"  # rank 0's inherited listening socket
LAUNCHED = "LATENT_EXPLORER_LAUNCHED"  # set in every rank this launcher starts
GRACE = 30.0  # seconds the other ranks get to save and stop after one failed, before they are killed


def loopback_interface() -> str | None:
    """The name of the loopback interface ("lo" on Linux, "lo0" on macOS), or None where there is none."""
    names = {name for _, name in socket.if_nameindex()} if hasattr(socket, "if_nameindex") else set()
    return next((n for n in ("lo", "lo0") if n in names), None)


def rank_env(base: dict[str, str], rank: int, world: int, port: int) -> dict[str, str]:
    """A rank's environment: torchrun's variables, on 127.0.0.1."""
    env = {**base, LAUNCHED: "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
           "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
    if lo := loopback_interface():
        env.setdefault("GLOO_SOCKET_IFNAME", lo)
    return env


def launch(args: list[str], procs: int, env: dict[str, str] | None = None) -> int:
    """Run ``python -m vae ARGS`` as ``procs`` ranks; their exit status (the first failure's, or 0)."""
    base = dict(os.environ if env is None else env)
    store = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    store.bind(("127.0.0.1", 0))
    store.listen(128)
    port = store.getsockname()[1]
    ranks: list[subprocess.Popen] = []
    try:
        for rank in range(procs):
            rank_vars = rank_env(base, rank, procs, port)
            fds: tuple[int, ...] = ()
            if rank == 0:
                rank_vars[STORE_FD], fds = str(store.fileno()), (store.fileno(),)
            ranks.append(subprocess.Popen([sys.executable, "-m", "vae", *args], env=rank_vars, pass_fds=fds))
    finally:
        store.close()  # rank 0 holds it now
    return _supervise(ranks)


def _supervise(ranks: list[subprocess.Popen]) -> int:
    def pass_on(signum, frame):
        for p in ranks:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, pass_on) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        failed = None
        while any(p.poll() is None for p in ranks):
            failed = failed or next((p for p in ranks if p.poll() not in (None, 0)), None)
            if failed is not None:
                _end(ranks)
                break
            time.sleep(0.2)
        codes = [p.wait() for p in ranks]
        return failed.returncode if failed is not None else next((c for c in codes if c), 0)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _end(ranks: list[subprocess.Popen]) -> None:
    """One rank failed: ask the others to stop (they save a checkpoint), then kill what is left."""
    for p in ranks:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and any(p.poll() is None for p in ranks):
        time.sleep(0.2)
    for p in ranks:
        if p.poll() is None:
            p.kill()


def main() -> int:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit() or int(sys.argv[1]) < 1:
        print("usage: python -m vae.launch PROCS ARGS... (the arguments of python -m vae)", file=sys.stderr)
        return 2
    return launch(sys.argv[2:], int(sys.argv[1]))


if __name__ == "__main__":
    sys.exit(main())
