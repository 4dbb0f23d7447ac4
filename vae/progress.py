"""The one progress type of the library: ``progress(fraction, message)``, fraction from 0 to 1.

Long work (loading data, downloads, IWAE, projections) reports through it; the command line turns it
into a tqdm bar, the app into ``st.progress``. ``part`` maps a step's own 0..1 into its share of a
larger job, so nested work reports one rising fraction.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def report(progress: Progress | None, fraction: float, message: str) -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(fraction, message)


def part(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """A progress for a step that covers ``lo``..``hi`` of the whole."""
    if progress is None:
        return None
    return lambda fraction, message: progress(lo + (hi - lo) * fraction, message)


def counted(progress: Progress | None, done: int, total: int, message: str) -> None:
    """Report ``done`` of ``total`` items (or bytes) as a fraction."""
    if progress is not None:
        progress(done / total if total else 1.0, message)
