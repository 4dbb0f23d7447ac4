"""vae.web.decoder: what a browser gets of a decoder (the pixels themselves: tests/e2e/test_browser_webdecoder.py)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from vae.config import ModelConfig
from vae.models import build_model
from vae.web import decoder as webdecoder


def unpack(blob: bytes) -> tuple[dict, np.ndarray]:
    header = webdecoder.read_header(blob)
    (n,) = struct.unpack_from("<I", blob, len(webdecoder.MAGIC))
    start = len(webdecoder.MAGIC) + 4 + n
    assert start % 4 == 0  # the JS reads the parameters as one Float32Array
    return header, np.frombuffer(blob[start:], dtype="<f4")


def test_mlp_layers_chain_and_hold_every_parameter():
    model = build_model(ModelConfig(input_shape=(1, 28, 28), latent_dim=6, hidden=(64, 32)))
    header, params = unpack(webdecoder.export_decoder(model, "run@1"))
    assert header["id"] == "run@1" and header["latent_dim"] == 6 and header["activation"] == "sigmoid"
    assert [(s["in"], s["out"], s["relu"]) for s in header["layers"]] == [
        (6, 32, True),
        (32, 64, True),
        (64, 784, False),
    ]
    assert params.size == sum(p.numel() for p in model.decoder.parameters())
    first = header["layers"][0]
    np.testing.assert_array_equal(params[first["w"] : first["b"]].reshape(32, 6), model.decoder.net[0].weight.detach())


def test_conv_layers_name_their_input_sizes():
    model = build_model(ModelConfig(input_shape=(3, 32, 32), arch="conv", latent_dim=4, channels=(8, 16, 16)))
    header, params = unpack(webdecoder.export_decoder(model, "x"))
    kinds = [(s["kind"], s.get("size"), s["relu"]) for s in header["layers"]]
    assert kinds == [
        ("linear", None, True),
        ("deconv", [4, 4], True),
        ("deconv", [8, 8], True),
        ("deconv", [16, 16], False),
    ]
    assert header["layers"][-1]["out"] == 3 and header["output_shape"] == [3, 32, 32]
    assert params.size == sum(p.numel() for p in model.decoder.parameters())


def test_gaussian_images_are_drawn_as_means():
    model = build_model(ModelConfig(input_shape=(1, 8, 8), likelihood="gaussian"))
    assert webdecoder.read_header(webdecoder.export_decoder(model, "g"))["activation"] == "identity"


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        (ModelConfig(input_shape=(12,), hidden=(8,)), "table rows"),
        (ModelConfig(input_shape=(2, 8, 8)), "2 channels"),
        (ModelConfig(input_shape=(3, 64, 64), latent_dim=128, hidden=(4096, 4096)), "parameters"),
    ],
)
def test_models_the_browser_cannot_draw_are_refused_with_a_reason(cfg, words):
    model = build_model(cfg)
    assert words in webdecoder.browser_unsupported(model)
    with pytest.raises(ValueError, match="cannot decode in the browser"):
        webdecoder.export_decoder(model, "x")


def test_a_blob_of_something_else_is_refused():
    with pytest.raises(ValueError, match="Not a Latent Explorer browser decoder"):
        webdecoder.read_header(b"PK\x03\x04" + b"\0" * 20)
