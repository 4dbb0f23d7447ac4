"""What each run file must hold, checked where it is read: a file that fails makes its run ``broken`` with the
reason, never an exception in a page or command."""

from __future__ import annotations

import math
from typing import Any

STATES = (
    "created",
    "starting",
    "queued",
    "running",
    "paused",
    "stopped",
    "interrupted",
    "finished",
    "failed",
    "broken",
    "unknown",
)
MAX_PID = 2**22  # Linux's largest pid_max
MAX_TIME = 1e11  # seconds since 1970: the year 5138; anything later (or negative) is not a date
MAX_COUNT = 10**12  # epochs, steps
MAX_TEXT = 4000  # characters of a status message kept


def finite(v: Any, lo: float = -math.inf, hi: float = math.inf) -> bool:
    """A real number (not a bool, not NaN or infinite) within [lo, hi]."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi


def count(v: Any, hi: int = MAX_COUNT) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= hi


def status(raw: Any) -> dict:
    """status.json with every field of the wrong type or out of range left out ({} for what is not an object):
    readers then see a missing field, never a string pid or a date in the year 10^400."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    checks = {
        "state": lambda v: v in STATES,
        "message": lambda v: isinstance(v, str),
        "pid": lambda v: count(v, MAX_PID) and v > 0,
        "updated": lambda v: finite(v, 0, MAX_TIME),
        "started": lambda v: finite(v, 0, MAX_TIME),
        "epoch": count,
        "step": count,
        "total_steps": count,
        "eta_s": lambda v: finite(v, 0, MAX_TIME),
        "processes": lambda v: count(v, 4096) and v > 0,
        "device": lambda v: isinstance(v, str) and len(v) < 64,
    }
    for key, value in raw.items():
        check = checks.get(key)
        if check is None or check(value):
            out[key] = value[:MAX_TEXT] if isinstance(value, str) else value
    return out


METRIC_NUMBERS = ("epoch", "step", "loss", "recon", "kl", "beta", "lr", "examples_per_s", "eta_s", "time",
                  "train_loss", "train_recon", "train_kl", "train_elbo", "test_elbo", "test_recon", "test_kl",
                  "active_units", "epoch_seconds", "elapsed_s")  # fmt: skip
METRIC_LISTS = ("test_kl_per_dim",)


def metric(rec: Any) -> dict | None:
    """One metrics.jsonl record, or None when it is not one (no type, no numeric epoch and step); numeric fields
    that are not finite numbers and lists that are not all numbers are left out."""
    if not isinstance(rec, dict) or rec.get("type") not in ("step", "epoch"):
        return None
    if not (finite(rec.get("epoch"), 0, MAX_COUNT) and count(rec.get("step"))):
        return None
    out = {}
    for key, value in rec.items():
        if key in METRIC_NUMBERS and not finite(value):
            continue
        if key in METRIC_LISTS and not (isinstance(value, list) and len(value) <= 4096 and all(map(finite, value))):
            continue
        out[key] = value
    return out


EVAL_NUMBERS = ("test_elbo", "test_recon", "test_kl", "active_units", "latent_dim", "n_test")
EVAL_OPTIONAL = ("iwae_ll", "iwae_k", "knn_accuracy", "knn_k", "recon_mse", "seconds", "time", "index_code_mi",
                 "total_correlation", "dimension_wise_kl")  # fmt: skip
# evaluation.json's "disentanglement" scores (vae.analysis.disentanglement computes them)
SCORE_KEYS = ("mig", "beta_vae", "factor_vae", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap")


def evaluation_problem(ev: object) -> str | None:
    """Why ``ev`` is not an evaluation this page can show (None when it is one)."""
    if not isinstance(ev, dict):
        return "it is not a JSON object"
    number = finite
    for key in EVAL_NUMBERS:
        if not number(ev.get(key)):
            return f"its field {key!r} is not a number"
    for key in EVAL_OPTIONAL:
        if key in ev and not number(ev[key]):
            return f"its field {key!r} is not a number"
    if "time" in ev and not finite(ev["time"], 0, MAX_TIME):
        return "its field 'time' is not a date"
    if not (count(ev["latent_dim"], 4096) and count(ev["active_units"], ev["latent_dim"])):
        return "its latent size or active units are not whole numbers in range"
    if "disentanglement" in ev:
        scores = ev["disentanglement"]
        if not isinstance(scores, dict) or any(not (scores.get(k) is None or number(scores[k])) for k in SCORE_KEYS):
            return "its disentanglement scores are not numbers"
    for key in ("kl_per_dim", "mean_variance"):
        values = ev.get(key)
        if not (isinstance(values, list) and len(values) == ev["latent_dim"] and all(map(number, values))):
            return f"its field {key!r} is not a list of {ev['latent_dim']} numbers"
    return None


MAX_TAGS, MAX_TAG, MAX_NOTE = 20, 40, 4000  # notes.json: a run's tags and note


def clean_notes(notes: object) -> dict:
    """``{"tags": [...], "note": "..."}`` checked: at most MAX_TAGS distinct tags of at most MAX_TAG characters
    (trimmed, no line breaks), a note of at most MAX_NOTE characters; a ValueError sentence otherwise."""
    if not isinstance(notes, dict) or not set(notes) <= {"tags", "note"}:
        raise ValueError("A run's notes are an object with 'tags' (a list of words) and 'note' (text).")
    tags, note = notes.get("tags", []), notes.get("note", "")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or not isinstance(note, str):
        raise ValueError("A run's tags are a list of words and its note is text.")
    tags = list(dict.fromkeys(" ".join(t.split()) for t in tags if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags) or len(note) > MAX_NOTE:
        raise ValueError(f"A run keeps at most {MAX_TAGS} tags of {MAX_TAG} characters and a note of "
                         f"{MAX_NOTE:,} characters.")  # fmt: skip
    return {"tags": tags, "note": note}
