"""The codes table: one CSV format for the app's download and ``vae embed``, with formula cells neutralised."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from ui.maps import table_csv
from vae.analysis.tables import FORMULA_LEAD, codes_table, csv_bytes, neutralise


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_a_formula_leading_label_is_written_as_text(lead):
    names = [f'{lead}HYPERLINK("http://x")', "plain"]
    df = codes_table(np.array(["test"] * 2), np.arange(2), np.zeros((2, 2)), np.zeros((2, 3)), np.array([0, 1]), names)
    rows = list(csv.DictReader(io.StringIO(csv_bytes(df).decode(), newline="")))
    assert [r["label_name"] for r in rows] == ["'" + names[0], "plain"]
    assert all(not r[k].startswith(FORMULA_LEAD) for r in rows for k in r)  # no cell of any column


def test_numbers_are_left_alone_and_neutralise_touches_only_formula_leads():
    assert neutralise("-3") == "'-3" and neutralise("a=b") == "a=b" and neutralise("") == ""
    df = codes_table(np.array(["test"]), np.array([0]), np.array([[-1.5, 2.0]]), np.array([[-0.25]]))
    back = pd.read_csv(io.BytesIO(csv_bytes(df)))
    assert list(back.columns) == ["split", "index", "x", "y", "z0"]
    assert (back["x"][0], back["z0"][0]) == (-1.5, -0.25)


def test_the_apps_csv_has_the_columns_of_the_command_lines():
    codes, xy = np.random.default_rng(0).normal(size=(3, 4)), np.zeros((3, 2))
    app = pd.read_csv(io.BytesIO(table_csv("test", np.arange(3), np.array([0, 1, 0]), ["a", "b"], xy, codes)))
    cli = codes_table(np.array(["test"] * 3), np.arange(3), xy, codes, np.array([0, 1, 0]), ["a", "b"])
    assert list(app.columns) == list(cli.columns)
    assert list(app["label_name"]) == ["a", "b", "a"]
