"""Every benchmark, once: its name on the command line, its module, and what it measures (in report order)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    name: str  # `python -m bench NAME`; its section is docs/benchmarks/NAME.md
    module: str  # exposes run(quick: bool = False, ...) -> str, a markdown section starting "## "
    about: str
    browser: bool = False  # drives Chromium


BENCHMARKS = (
    Benchmark("training", "bench.bench_train", "training throughput against the PyTorch-examples loop"),
    Benchmark("recipe", "bench.bench_recipe", "time to the reference's ELBO: bfloat16, batch, Adam's β2"),
    Benchmark("quality", "bench.bench_quality", "model quality under a time budget: MLP and conv VAEs"),
    Benchmark("projection", "bench.bench_projection", "UMAP against PCA: fit, transform, inverse, memory, trust"),
    Benchmark("scaling", "bench.bench_scaling", "epoch time and map time against the number of examples"),
    Benchmark("history", "bench.bench_history", "the latent history's cost to training; aligned frames"),
    Benchmark("disentanglement", "bench.bench_disentanglement", "MIG, DCI, β-VAE and FactorVAE scores on sprites"),
    Benchmark("families", "bench.bench_families", "VAE, IWAE training and β-TCVAE: likelihood and training time"),
    Benchmark("ddp", "bench.bench_ddp", "torchrun × 1 thread against 1 process × 2 threads"),
    Benchmark("interaction", "bench.bench_interaction", "clicks and sliders in Chromium; 8 sessions", True),
    Benchmark("rerun_floor", "bench.bench_rerun_floor", "the browser's CPU per Streamlit rerun", True),
    Benchmark("drag", "bench.bench_drag", "in-browser decoding while a slider is dragged", True),
    Benchmark("mapview", "bench.bench_mapview", "Explore's map: pointer → picture, redraws, heap", True),
    Benchmark("large_map", "bench.bench_large_map", "737,280 sprites: encode, PCA, UMAP, pan and hover", True),
    Benchmark("renderers", "bench.bench_renderers", "who draws a large map's points: Plotly, regl, the layer", True),
    Benchmark("compare", "bench.bench_compare", "the Compare page against one Explore map, 10,000 and 60,000", True),
    Benchmark("live_map", "bench.bench_live_map", "the live latent map: frame written → on screen", True),
    Benchmark("fit_stall", "bench.bench_fit_stall", "the server's answers while a UMAP map is fitted", True),
    Benchmark("first_map", "bench.bench_first_map", "a new user's first map on a fresh machine", True),
)
BY_NAME = {b.name: b for b in BENCHMARKS}
