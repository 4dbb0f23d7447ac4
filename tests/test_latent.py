"""Paths through latent space: lerp / slerp / interpolate and the traversal grid's codes."""

import numpy as np
import pytest

from vae import latent


def test_lerp_is_the_straight_segment():
    a, b = np.array([1.0, -2.0, 0.5]), np.array([3.0, 2.0, -0.5])
    path = latent.lerp(a, b, np.array([0.0, 0.25, 0.5, 1.0]))
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(path[1], 0.75 * a + 0.25 * b)
    np.testing.assert_allclose(path[2], (a + b) / 2)


def test_slerp_hits_both_endpoints_exactly():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    path = latent.slerp(a, b, np.linspace(0, 1, 9))
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)


def test_slerp_of_orthogonal_unit_vectors_is_the_quarter_circle():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    t = np.linspace(0, 1, 7)
    path = latent.slerp(a, b, t)
    np.testing.assert_allclose(path, np.column_stack([np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)]), atol=1e-12)


def test_slerp_keeps_the_norm_of_equal_norm_endpoints_and_moves_at_constant_angle():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20), rng.normal(size=20)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = latent.slerp(a, b, np.linspace(0, 1, 11))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    unit = path / np.linalg.norm(path, axis=1, keepdims=True)
    steps = np.arccos(np.clip((unit[:-1] * unit[1:]).sum(1), -1, 1))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-6)
    # whereas the straight line dips toward the origin in the middle
    assert np.linalg.norm(latent.lerp(a, b, np.array([0.5]))[0]) < np.linalg.norm(a)


@pytest.mark.parametrize(
    ("a", "b"),
    [([1.0, 2.0], [2.0, 4.0]), ([1.0, 2.0], [-1.0, -2.0]), ([0.0, 0.0], [1.0, 1.0])],
    ids=["parallel", "opposite", "zero"],
)
def test_slerp_falls_back_to_lerp_where_the_arc_is_undefined(a, b):
    t = np.linspace(0, 1, 5)
    np.testing.assert_allclose(latent.slerp(np.array(a), np.array(b), t), latent.lerp(np.array(a), np.array(b), t))


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolate_returns_steps_float32_codes(method):
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    codes = latent.interpolate(a, b, 6, method)
    assert codes.shape == (6, 3) and codes.dtype == np.float32
    np.testing.assert_allclose(codes[0], a)
    np.testing.assert_allclose(codes[-1], b)


def test_interpolate_rejects_endpoints_of_different_lengths():
    with pytest.raises(ValueError, match="one length"):
        latent.interpolate(np.zeros(3), np.zeros(4), 5)


def test_interpolate_rejects_fewer_than_two_steps():
    with pytest.raises(ValueError, match="at least 2"):
        latent.interpolate(np.zeros(3), np.ones(3), 1)


def test_interpolate_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="'lerp' or 'slerp'"):
        latent.interpolate(np.zeros(3), np.ones(3), 5, "cubic")


def test_traversal_sweeps_one_dimension_per_row_and_holds_the_rest():
    z = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    steps = np.linspace(-3, 3, 5)
    zs = latent.traversal_latents(z, [2, 0], steps)
    assert zs.shape == (10, 3)
    np.testing.assert_allclose(zs[:5, 2], steps)
    np.testing.assert_allclose(zs[:5, :2], np.tile(z[:2], (5, 1)))
    np.testing.assert_allclose(zs[5:, 0], steps)
    np.testing.assert_allclose(zs[5:, 1:], np.tile(z[1:], (5, 1)))
