"""The command line's latent-space commands: ``embed``, ``history``, ``posterior`` and ``sample``."""

from __future__ import annotations

import time
from pathlib import Path

from ..progress import part
from ..runs import folder as rf
from .common import progress_bar
from .common import resolve_run as _resolve_run


def add_latent_parsers(sub) -> None:
    """The four commands' arguments, on the command line's subparsers."""
    m = sub.add_parser("embed", help="write latent codes and 2-D coordinates (CSV or NPZ)")
    m.add_argument("run")
    m.add_argument("--method", default="umap", choices=["umap", "pca", "tsne"])
    m.add_argument("--split", default="test", choices=["train", "test", "all"], help="all: train then test")
    m.add_argument("--max-points", type=int, default=None)
    m.add_argument("--out", default=None, help="output file (.csv or .npz); default RUN/embedding-METHOD.csv")
    m.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to encode (auto: CUDA)")
    m.add_argument("--json", action="store_true")

    h = sub.add_parser("history", help="the latent map's recorded frames (epoch, step, test ELBO); --gif animates")
    h.add_argument("run")
    h.add_argument("--gif", default=None, metavar="OUT.gif", help="write the aligned map's animation here")
    h.add_argument("--method", default="pca", choices=["pca", "umap"],
                   help="pca: each frame's PCA turned onto the previous (milliseconds); umap: each frame's UMAP "
                        "started from the previous frame's (seconds per frame, kept with the run)")  # fmt: skip
    h.add_argument("--json", action="store_true")

    q = sub.add_parser("posterior", help="one item's q(z|x): μ, σ and samples of it")
    q.add_argument("run")
    q.add_argument("--item", type=int, default=0, help="the item's index in its split")
    q.add_argument("--split", default="test", choices=["train", "test"])
    q.add_argument("--samples", type=int, default=10, metavar="K", help="samples of q(z|x) to draw")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--json", action="store_true")

    g = sub.add_parser("sample", help="decode samples of the run's prior (N(0, I) or its VampPrior) into a picture")
    g.add_argument("run")
    g.add_argument("--n", type=int, default=64, help="how many samples")
    g.add_argument("--temperature", type=float, default=1.0, help="the scale of ε (1: the prior itself)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--label", metavar="NAME_OR_INDEX",
                   help="a conditional VAE's class to draw, by name or number (default: row r is class r)")  # fmt: skip
    g.add_argument("--out", default="prior-grid.png", help="the PNG to write")
    g.add_argument("--json", action="store_true")


def cmd_embed(args) -> dict:
    import numpy as np

    from ..analysis.tables import codes_table, csv_bytes
    from ..data import load_dataset
    from ..distributed import resolve_device
    from ..projection import LatentProjector
    from ..runs.fileio import atomic_path, atomic_write_bytes

    if args.max_points is not None and args.max_points < 1:
        raise ValueError(f"--max-points must be a whole number of at least 1; got {args.max_points}.")
    run_dir = _resolve_run(args, args.run)
    out_path = Path(args.out) if args.out else rf.embedding_path(run_dir, args.method, args.split)
    if out_path.is_dir():
        raise ValueError(f"--out {out_path} is a folder; give a file name ending in .csv or .npz.")
    model = rf.load_model(run_dir).to(resolve_device(args.device))
    ds = load_dataset(rf.load_data_config(run_dir))
    n = ds.split_size(args.split)
    rows = np.arange(min(n, args.max_points or n))
    with progress_bar(not args.json) as progress:  # 737,280 sprites: a minute to encode, minutes for UMAP
        mu, _ = model.embed_split(ds, args.split, rows, part(progress, 0.0, 0.1))
        t0 = time.perf_counter()
        xy = LatentProjector(method=args.method).fit(mu, progress=part(progress, 0.1, 1.0)).embedding_
        seconds = time.perf_counter() - t0
    y = ds.split_labels(args.split)
    labels = y[rows] if y is not None else np.full(len(mu), -1)
    splits, index = zip(*(ds.item_part(args.split, r) for r in rows), strict=True)
    factors = ds.split_factors(args.split)  # the ground truth of data that has one (sprites), as extra columns
    named = (
        {f"factor_{name}": factors[rows, k] for k, name in enumerate(ds.factor_names or [])}
        if factors is not None
        else {}
    )
    if out_path.suffix == ".npz":
        with atomic_path(out_path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, codes=mu, xy=xy, labels=labels, split=np.array(splits), index=np.array(index),
                                **named)  # fmt: skip
    else:
        table = codes_table(np.array(splits), np.array(index), xy, mu, y[rows] if y is not None else None,
                            ds.label_names, {k.removeprefix("factor_"): v for k, v in named.items()})  # fmt: skip
        atomic_write_bytes(out_path, csv_bytes(table))
    return {"run": run_dir.name, "method": args.method, "points": len(mu), "out": str(out_path), "seconds": seconds}


def cmd_history(args) -> dict:
    from ..analysis import history
    from ..runs.fileio import atomic_write_bytes

    run_dir = _resolve_run(args, args.run)
    frames, probe = history.frames(run_dir), history.read_probe(run_dir)
    if not frames or probe is None:
        raise ValueError(f"{run_dir.name} has no latent history: {history.missing(run_dir)}.")
    out = {"run": run_dir.name, "probe_items": len(probe[0]), "split": probe[2], "method": args.method}
    if args.method == "umap":
        with progress_bar(not args.json) as progress:
            layouts = history.umap_layouts(run_dir, progress=progress)
    else:
        layouts = history.aligned_layouts([f.codes() for f in frames])
    stable = history.stability(layouts)
    out["frames"] = [{"epoch": f.epoch, "step": f.step, "test_elbo": f.test_elbo, "disparity": d}
                     for f, d in zip(frames, stable, strict=True)]  # fmt: skip
    if args.gif:
        gif = history.animation_gif(layouts, probe[1], [history.caption(f) for f in frames])
        atomic_write_bytes(Path(args.gif), gif)
        out["gif"] = args.gif
    return out


def cmd_posterior(args) -> dict:
    from ..analysis.posterior import sample_posterior, sigma
    from ..data import load_dataset

    run_dir = _resolve_run(args, args.run)
    ds = load_dataset(rf.load_data_config(run_dir))
    n = ds.split_size(args.split)
    if not 0 <= args.item < n:
        raise ValueError(f"--item must be from 0 to {n - 1} ({n:,} {args.split} items); got {args.item}.")
    mu, logvar = rf.load_model(run_dir).embed_split(ds, args.split, [args.item])
    samples = sample_posterior(mu[0], logvar[0], args.samples, seed=args.seed)
    y = ds.split_labels(args.split)
    return {"run": run_dir.name, "split": args.split, "item": args.item,
            "label": None if y is None else int(y[args.item]), "mu": mu[0].tolist(),
            "sigma": sigma(logvar[0]).tolist(), "samples": samples.tolist()}  # fmt: skip


def cmd_sample(args) -> dict:
    import numpy as np

    from ..analysis.posterior import model_prior_samples
    from ..images import make_grid, png_bytes
    from ..runs.fileio import atomic_write_bytes

    if not 1 <= args.n <= 1024:
        raise ValueError(f"--n must be a whole number from 1 to 1024; got {args.n}.")
    run_dir = _resolve_run(args, args.run)
    model = rf.load_model(run_dir)
    if len(model.cfg.input_shape) != 3:
        raise ValueError(f"{run_dir.name} decodes table rows, not images: `posterior` prints codes instead.")
    z = model_prior_samples(model, args.n, args.temperature, args.seed)
    side = int(np.ceil(np.sqrt(args.n)))
    labels = sample_labels(run_dir, model, args.label, args.n, side)
    x = model.decode_numpy(z, labels)  # (n, C, H, W)
    grid = make_grid(x, side, pad=1, fill=1.0)
    atomic_write_bytes(Path(args.out), png_bytes(grid, scale=max(1, 224 // max(x.shape[-2:]))))
    out = {"run": run_dir.name, "n": args.n, "temperature": args.temperature, "out": args.out}
    return out | ({} if labels is None else {"labels": np.atleast_1d(labels).tolist()})


def sample_labels(run_dir: Path, model, label: str | None, n: int, side: int):
    """A conditional VAE's classes for ``n`` samples in rows of ``side``: ``label`` (a name or a number) for all,
    or row r class r; None for other models (which refuse a ``label`` in a sentence)."""
    if not model.conditional:
        if label is not None:
            raise ValueError(f"{run_dir.name} is not a conditional VAE: --label is for runs of --family cvae.")
        return None
    import numpy as np

    classes = model.cfg.classes
    if label is None:
        return (np.arange(n) // side) % classes
    from ..data import load_dataset

    names = [str(v) for v in (load_dataset(rf.load_data_config(run_dir)).label_names or range(classes))]
    if label in names:
        return names.index(label)
    if label.strip().isdigit() and int(label) < classes:
        return int(label)
    raise ValueError(f"--label must be one of the run's classes ({', '.join(names[:12])}) or a number from 0 to "
                     f"{classes - 1}; got {label!r}.")  # fmt: skip


LATENT_COMMANDS = {"embed": cmd_embed, "history": cmd_history, "posterior": cmd_posterior, "sample": cmd_sample}
