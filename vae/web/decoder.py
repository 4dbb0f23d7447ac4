"""A decoder packed for the browser: one binary blob the app's JS decoder (ui/decoder/core.js) runs.

Layout, little-endian: 8 bytes ``MAGIC``, a uint32 header length ``n``, ``n`` bytes of UTF-8 JSON (padded
with spaces to a multiple of 4), then every parameter as float32. The header lists the layers in order;
each names its parameter offsets (in floats) into that array::

    {"format": 1, "id": ..., "latent_dim": L, "output_shape": [C, H, W], "activation": "sigmoid" | "identity",
     "layers": [{"kind": "linear", "in": a, "out": b, "relu": true, "w": offset, "b": offset},
                {"kind": "deconv", "in": c_in, "out": c_out, "size": [h, w], "kernel": 4, "stride": 2,
                 "padding": 1, "relu": false, "w": offset, "b": offset}]}

A ``linear`` weight is torch's (out, in) row-major; a ``deconv`` weight is ConvTranspose2d's
(in, out, k, k). A ``deconv`` reads its input as (in, h, w): the flat output of the layer before.
"""

from __future__ import annotations

import json
import struct

import numpy as np
from torch import nn

from ..models import VAE

MAGIC = b"LEDECOD1"
FORMAT = 1
MAX_PARAMETERS = 8_000_000  # 32 MB of float32: beyond this, decoding stays on the server


def browser_unsupported(model: VAE) -> str | None:
    """Why ``model``'s decoder cannot run in the browser (a sentence), or None when it can."""
    cfg = model.cfg
    if len(cfg.input_shape) != 3:
        return "the browser decoder draws images, and this model decodes table rows"
    if cfg.input_shape[0] not in (1, 3):
        return f"the browser decoder draws 1- or 3-channel images; this model has {cfg.input_shape[0]} channels"
    n = sum(p.numel() for p in model.decoder.parameters())
    if n > MAX_PARAMETERS:
        return f"its decoder has {n:,} parameters, more than the {MAX_PARAMETERS:,} sent to a browser"
    return None


def _linear(
    layer: nn.Linear, relu: bool, params: list[np.ndarray], offset: int, fold: tuple[int, int] | None = None
) -> tuple[dict, int]:
    """``fold`` (latent size L, class c): a conditional decoder's first layer takes [z, one-hot c]; the class's
    column joins the bias, so the browser's layer takes z alone: W[:, :L] z + (b + W[:, L + c])."""
    w = layer.weight.detach().cpu().numpy()  # (out, in)
    b = layer.bias.detach().cpu().numpy()  # (out,)
    if fold is not None:
        latent, label = fold
        w, b = np.ascontiguousarray(w[:, :latent]), b + w[:, latent + label]
    params += [w.ravel(), b]
    spec = {"kind": "linear", "in": w.shape[1], "out": w.shape[0], "relu": relu, "w": offset, "b": offset + w.size}
    return spec, offset + w.size + b.size


def _deconv(
    layer: nn.ConvTranspose2d, size: tuple[int, int], relu: bool, params: list[np.ndarray], offset: int
) -> tuple[dict, int]:
    w = layer.weight.detach().cpu().numpy()  # (in, out, k, k)
    b = layer.bias.detach().cpu().numpy()  # (out,)
    if layer.kernel_size[0] != layer.kernel_size[1] or layer.stride[0] != layer.stride[1]:
        raise ValueError("the browser decoder supports square kernels and equal strides only")
    params += [w.ravel(), b]
    spec = {
        "kind": "deconv",
        "in": w.shape[0],
        "out": w.shape[1],
        "size": list(size),
        "kernel": layer.kernel_size[0],
        "stride": layer.stride[0],
        "padding": layer.padding[0],
        "relu": relu,
        "w": offset,
        "b": offset + w.size,
    }
    return spec, offset + w.size + b.size


def _sequence(modules: list[nn.Module]) -> list[tuple[nn.Module, bool]]:
    """Layers with parameters, each with whether a ReLU follows it; a leading ReLU is folded into the layer before."""
    out: list[tuple[nn.Module, bool]] = []
    for m in modules:
        if isinstance(m, nn.ReLU):
            if not out:
                raise ValueError("a decoder may not start with a ReLU")
            out[-1] = (out[-1][0], True)
        elif isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
            out.append((m, False))
        else:
            raise ValueError(f"the browser decoder cannot run a {type(m).__name__} layer")
    return out


def layer_specs(model: VAE, label: int | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """The header's layer list and the parameter arrays, in order (a conditional VAE's for class ``label``)."""
    dec = model.decoder
    if model.cfg.arch == "conv":
        modules = [dec.fc, *dec.deconv]
        size = tuple(dec.start[1:])  # the first transposed convolution's input (h, w)
    else:
        modules, size = list(dec.net), (0, 0)
    specs, params, offset = [], [], 0
    fold = (model.cfg.latent_dim, label or 0) if model.conditional else None
    for layer, relu in _sequence(modules):
        if isinstance(layer, nn.Linear):
            spec, offset = _linear(layer, relu, params, offset, fold if not specs else None)
        else:
            spec, offset = _deconv(layer, size, relu, params, offset)
            k, s, p = spec["kernel"], spec["stride"], spec["padding"]
            size = ((size[0] - 1) * s - 2 * p + k, (size[1] - 1) * s - 2 * p + k)
        specs.append(spec)
    return specs, params


def export_decoder(model: VAE, model_id: str, label: int | None = None) -> bytes:
    """``model``'s decoder as the browser blob, tagged ``model_id`` (the page uses the checkpoint's id); a
    conditional VAE's decoder of class ``label`` (the class folded into its first layer)."""
    reason = browser_unsupported(model)
    if reason:
        raise ValueError(f"This model cannot decode in the browser: {reason}.")
    specs, params = layer_specs(model, label)
    header = {
        "format": FORMAT,
        "id": model_id,
        "latent_dim": model.cfg.latent_dim,
        "output_shape": list(model.cfg.input_shape),
        "activation": "sigmoid" if model.cfg.likelihood == "bernoulli" else "identity",
        "layers": specs,
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(MAGIC) + 4 + len(text)) % 4)  # parameters start on a 4-byte boundary
    blob = np.concatenate(params).astype("<f4", copy=False)
    return MAGIC + struct.pack("<I", len(text)) + text + blob.tobytes()


def read_header(blob: bytes) -> dict:
    """The JSON header of a blob made by :func:`export_decoder` (a ValueError if it is not one)."""
    if blob[: len(MAGIC)] != MAGIC or len(blob) < len(MAGIC) + 4:
        raise ValueError("Not a Latent Explorer browser decoder.")
    (n,) = struct.unpack_from("<I", blob, len(MAGIC))
    return json.loads(blob[len(MAGIC) + 4 : len(MAGIC) + 4 + n])


def expected_pixels(model: VAE, z: np.ndarray, label: int | None = None) -> np.ndarray:
    """What the browser should draw for latent rows ``z`` (N, L): uint8 (N, C, H, W), torch's answer."""
    x = model.decode_numpy(z, label)
    return np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)
