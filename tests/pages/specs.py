"""Plotly specs as AppTest sees them: arrays sent as base64 typed arrays ({"dtype", "bdata"}) decoded."""

from __future__ import annotations

import base64
import json

import numpy as np


def array(v) -> np.ndarray:
    """A Plotly spec's array: a list, or a typed array {"dtype", "bdata"}."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def chart_spec(chart) -> dict:
    """One ``st.plotly_chart`` element's figure, its traces' x, y and customdata as numpy arrays."""
    spec = json.loads(chart.proto.spec)
    for trace in spec["data"]:
        for axis in ("x", "y", "customdata"):
            if axis in trace:
                trace[axis] = array(trace[axis])
    return spec
