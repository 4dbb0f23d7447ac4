"""The table of codes that the app's CSV download and ``python -m vae embed`` both write: one format.

Columns: ``split``, ``index`` (the item's row in its split), ``label`` and ``label_name`` (for labelled data),
``x``, ``y`` (the map), ``z0`` … (the latent means), and ``factor_*`` for data with known factors (sprites).
Text cells that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, a tab or carriage return
first) are written with a leading apostrophe, so a label from a user's file is shown, never evaluated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it literally: a formula-leading cell gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_LEAD) else text


def codes_table(
    split: np.ndarray,
    index: np.ndarray,
    xy: np.ndarray,
    codes: np.ndarray,
    labels: np.ndarray | None = None,
    names: list[str] | None = None,
    factors: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per item: ``split`` and ``index`` (N,), ``xy`` (N, 2), ``codes`` (N, latent_dim), ``labels`` (N,)
    with ``names`` for them, ``factors`` {name: (N,)} named ``factor_<name>``."""
    df = pd.DataFrame({"split": np.asarray(split), "index": np.asarray(index)})
    if labels is not None:
        labels = np.asarray(labels)
        df["label"] = labels
        if names is not None:
            df["label_name"] = [names[y] if 0 <= y < len(names) else "" for y in labels]
    df["x"], df["y"] = xy[:, 0], xy[:, 1]
    df = pd.concat([df, pd.DataFrame(codes, columns=[f"z{d}" for d in range(codes.shape[1])])], axis=1)
    for name, values in (factors or {}).items():
        df[f"factor_{name}"] = values
    return df


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The table as CSV (6 significant digits for floats), every text cell neutralised."""
    out = df.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [neutralise(v) if isinstance(v, str) else v for v in out[column]]
    return out.to_csv(index=False, float_format="%.6g").encode()
