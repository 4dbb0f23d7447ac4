"""The JS decoder (ui/decoder/core.js) in real Chromium draws what torch decodes, within 1/255 per pixel."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import ROOT

from vae.config import ModelConfig
from vae.models import build_model
from vae.runs import folder as rf
from vae.web import decoder as webdecoder

JS = (ROOT / "ui" / "decoder" / "core.js").read_text()

# Load the module from a blob URL, parse the weights, decode each z and return the RGBA bytes' RGB planes.
DECODE_IN_BROWSER = """
async ([source, weights, zs]) => {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const mod = await import(url);
  const bytes = Uint8Array.from(atob(weights), (c) => c.charCodeAt(0));
  const model = mod.parseDecoder(bytes);
  const [c, h, w] = model.shape;
  return zs.map((z) => {
    const rgba = mod.toRGBA(model, mod.decode(model, Float32Array.from(z)), new Uint8ClampedArray(h * w * 4));
    return Array.from(rgba);
  });
}
"""


@pytest.fixture
def blank(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def browser_pixels(page, model, zs: np.ndarray) -> np.ndarray:
    """What the JS decoder draws for each row of ``zs``: uint8 (N, C, H, W)."""
    blob = webdecoder.export_decoder(model, "test")
    out = page.evaluate(DECODE_IN_BROWSER, [JS, base64.b64encode(blob).decode(), zs.tolist()])
    c, h, w = model.cfg.input_shape
    rgba = np.asarray(out, dtype=np.uint8).reshape(len(zs), h, w, 4)
    return rgba[..., :c].transpose(0, 3, 1, 2)  # (N, C, H, W)


def sharpened(cfg: ModelConfig, seed: int):
    """A model with random weights scaled up so its pixels spread over 0..255 rather than sit near 128."""
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3.0)
    return model


def check_match(page, model, n: int = 6, seed: int = 0) -> None:
    zs = np.random.default_rng(seed).standard_normal((n, model.cfg.latent_dim)).astype(np.float32) * 1.5
    got = browser_pixels(page, model, zs).astype(int)
    want = webdecoder.expected_pixels(model, zs).astype(int)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1, "the browser's pixels differ from torch's by more than 1/255"
    assert want.std() > 20  # the images are not flat: a wrong layer order or transpose would show


def test_trained_mlp_decoder_matches_torch(blank, trained_runs: Path):
    model = rf.load_model(trained_runs / "digits-small")
    zs = np.random.default_rng(1).standard_normal((8, model.cfg.latent_dim)).astype(np.float32)
    got = browser_pixels(blank, model, zs).astype(int)
    want = webdecoder.expected_pixels(model, zs).astype(int)
    assert np.abs(got - want).max() <= 1
    assert len({g.tobytes() for g in got}) == len(zs)  # each vector draws its own image


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(input_shape=(1, 28, 28), arch="conv", latent_dim=8, channels=(16, 32)),
        ModelConfig(input_shape=(3, 32, 32), arch="conv", latent_dim=5, channels=(8, 16, 16)),
        ModelConfig(input_shape=(1, 64, 64), arch="conv", latent_dim=10, channels=(8, 8, 16, 16)),
        ModelConfig(input_shape=(3, 16, 16), arch="mlp", latent_dim=3, hidden=(64, 32)),
    ],
    ids=["conv-28-gray", "conv-32-rgb", "conv-64-gray", "mlp-16-rgb"],
)
def test_decoder_kinds_match_torch(blank, cfg):
    check_match(blank, sharpened(cfg, seed=3))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_a_conditional_decoder_draws_the_class_it_was_packed_for_as_torch_does(blank, arch):
    cfg = ModelConfig(input_shape=(1, 28, 28), arch=arch, latent_dim=3, hidden=(64,), channels=(8, 16),
                      family="cvae", classes=4)  # fmt: skip
    model = sharpened(cfg, seed=3)
    zs = np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)
    drawn = []
    for label in (0, 3):  # the class folded into the first layer's bias
        blob = webdecoder.export_decoder(model, f"test#class{label}", label)
        out = blank.evaluate(DECODE_IN_BROWSER, [JS, base64.b64encode(blob).decode(), zs.tolist()])
        got = np.asarray(out, dtype=np.uint8).reshape(len(zs), 28, 28, 4)[..., :1].transpose(0, 3, 1, 2).astype(int)
        want = webdecoder.expected_pixels(model, zs, label).astype(int)
        assert np.abs(got - want).max() <= 1, (arch, label)
        drawn.append(got)
    assert np.abs(drawn[0] - drawn[1]).max() > 20  # another class draws another picture from the same z
