"""Paths through latent space: lerp / slerp / interpolate and the traversal grid's codes."""

import numpy as np
import pytest

from vae.analysis import latent


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


# ---------------------------------------------------------------- attribute vectors and analogies


def test_attribute_vector_is_the_difference_of_the_groups_means_on_constructed_codes():
    rng = np.random.default_rng(0)
    centre_a, centre_b = np.array([1.0, -2.0, 0.5]), np.array([-3.0, 4.0, 0.5])
    offsets = rng.normal(size=(40, 3))
    codes = np.concatenate(
        [centre_a + offsets[:20] - offsets[:20].mean(0), centre_b + offsets[20:] - offsets[20:].mean(0)]
    )
    axis = latent.attribute_vector(codes, np.arange(20), np.arange(20, 40))
    np.testing.assert_allclose(axis, centre_b - centre_a, atol=1e-5)
    np.testing.assert_allclose(latent.attribute_vector(codes, [3], [25]), codes[25] - codes[3], atol=1e-6)
    path = latent.along(codes[0], axis, np.linspace(0, 1, 5))
    assert path.shape == (5, 3) and path.dtype == np.float32
    np.testing.assert_allclose(path[0], codes[0], atol=1e-6)
    np.testing.assert_allclose(path[-1], codes[0] + centre_b - centre_a, atol=1e-5)  # one step lands in group B
    np.testing.assert_allclose(path[2] - path[1], path[1] - path[0], atol=1e-6)  # evenly spaced
    means = latent.class_means(codes, np.repeat([4, 7], 20))
    assert sorted(means) == [4, 7]
    np.testing.assert_allclose(means[7] - means[4], axis, atol=1e-5)


def test_analogy_and_the_sentences_for_bad_groups():
    a, b, c = np.array([3.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 5.0])
    np.testing.assert_allclose(latent.analogy(a, b, c), [2.0, 5.0])
    with pytest.raises(ValueError, match="at least one item"):
        latent.attribute_vector(np.zeros((4, 2)), [], [1])
    with pytest.raises(ValueError, match="one length"):
        latent.analogy(a, b, np.zeros(3))
    with pytest.raises(ValueError, match="one length"):
        latent.along(a, np.zeros(3), [0.0, 1.0])


@pytest.fixture(scope="module")
def fashion_model(fashion_mnist, tmp_path_factory):
    from vae.config import DataConfig, TrainConfig
    from vae.data import load_dataset
    from vae.runs import folder as rf
    from vae.runs.folder import new_run
    from vae.train import train

    cfg = DataConfig(name="fashion-mnist", max_train=10_000, max_test=2_000)
    ds = load_dataset(cfg)
    run = new_run(tmp_path_factory.mktemp("runs"), "fashion", ds, cfg, latent_dim=10,
                  train_cfg=TrainConfig(epochs=3, threads=1, probe_size=0))  # fmt: skip
    assert train(run, dataset=ds)["state"] == "finished"
    return rf.load_model(run).eval(), ds


@pytest.mark.parametrize(
    ("source", "target"), [(0, 1), (7, 9), (8, 3)]
)  # T-shirt→Trouser, Sneaker→Ankle boot, Bag→Dress
@pytest.mark.slow
def test_moving_items_toward_a_class_makes_a_classifier_see_that_class(fashion_model, source, target):
    """Fashion-MNIST: items of one class moved along mean(target) - mean(source), decoded and encoded again, are
    judged more likely of the target class by a logistic regression fit on the training set's latent means
    (measured: 99-100 % of items, mean probability 0.01-0.09 before, 0.60-0.88 after)."""
    import torch
    from sklearn.linear_model import LogisticRegression

    model, ds = fashion_model
    train_codes, _ = model.embed(ds.x_train.float())
    classifier = LogisticRegression(max_iter=2000).fit(train_codes, ds.y_train.numpy())
    direction = latent.attribute_vector(train_codes, np.flatnonzero(ds.y_train.numpy() == source),
                                        np.flatnonzero(ds.y_train.numpy() == target))  # fmt: skip
    test_codes, _ = model.embed(ds.x_test.float())
    items = np.flatnonzero(ds.y_test.numpy() == source)[:100]
    moved = np.stack([latent.along(test_codes[i], direction, [1.0])[0] for i in items])  # (100, L)
    with torch.no_grad():
        pictures = model.decode(torch.from_numpy(moved))  # what the user sees, encoded again
    again, _ = model.embed(pictures)
    column = list(classifier.classes_).index(target)
    before = classifier.predict_proba(test_codes[items])[:, column]
    after = classifier.predict_proba(again)[:, column]
    assert np.mean(after > before) > 0.9, (np.mean(after > before), before.mean(), after.mean())
    assert after.mean() > 0.5 > before.mean()
    random = np.random.default_rng(0).normal(size=direction.shape).astype(np.float32)
    random *= np.linalg.norm(direction) / np.linalg.norm(random)  # the same length, another direction
    with torch.no_grad():
        elsewhere, _ = model.embed(model.decode(torch.from_numpy(test_codes[items] + random)))
    assert classifier.predict_proba(elsewhere)[:, column].mean() < after.mean() / 2
