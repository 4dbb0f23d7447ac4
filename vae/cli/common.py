"""What every command of the command line shares: the runs folder and finding a run by name or path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..runs import folder as rf


def runs_root(args) -> Path:
    """The runs folder: ``--runs-dir``, else checkpoints/ or $LATENT_EXPLORER_RUNS."""
    # resolved: with a relative --runs-dir (../x) a run's uploads are still recognised as its own
    return Path(args.runs_dir).resolve() if args.runs_dir else rf.default_root()


def resolve_run(args, name: str) -> Path:
    """A run given as a folder path or as a name under the runs folder."""
    p = Path(name)
    if rf.is_run(p):
        return p
    path = rf.run_path(runs_root(args), name)
    if not rf.is_run(path):
        raise FileNotFoundError(f"There is no run {name!r} in {runs_root(args)}; `python -m vae runs` lists them.")
    return path


@contextmanager
def progress_bar(show: bool) -> Iterator:
    """A percent bar (tqdm, on stderr) while the block runs when ``show``: yields a ``progress(fraction, message)``
    callback for ``vae.progress``, or None."""
    if not show:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", dynamic_ncols=True)

    def progress(frac: float, msg: str) -> None:
        bar.update(int(frac * 100) - bar.n)
        bar.set_description(msg)

    try:
        yield progress
    finally:
        bar.close()
