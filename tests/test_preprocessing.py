"""ContrastNorm and ZCA against their defining formulas."""
import numpy as np
import pytest

from parmesan.preprocessing import ZCA, ContrastNorm

rng = np.random.RandomState(12)


def test_contrast_norm_centres_and_scales_every_example():
    images = rng.rand(6, 2, 3, 3) * 10
    images[5] = 4.  # a flat image is only centred
    normalised = ContrastNorm(scale=55).apply(images, copy=True)
    assert normalised.shape == images.shape
    rows = normalised.reshape(6, -1)
    np.testing.assert_allclose(rows.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(rows[:5], axis=1), 55)
    np.testing.assert_array_equal(rows[5], 0)
    centred = images.reshape(6, -1)[0] - images.reshape(6, -1)[0].mean()
    np.testing.assert_allclose(rows[0],
                               55 * centred / np.linalg.norm(centred))


def test_contrast_norm_works_in_place_unless_copy():
    data = rng.rand(3, 4)
    original = data.copy()
    ContrastNorm().apply(data, copy=True)
    np.testing.assert_array_equal(data, original)
    result = ContrastNorm().apply(data)
    assert result is not original and np.shares_memory(result, data)
    assert not np.allclose(data, original)


def test_zca_is_the_symmetric_inverse_square_root_of_the_covariance():
    mixing = rng.randn(4, 4)
    data = rng.randn(400, 4).dot(mixing) + 3
    bias = 0.1
    zca = ZCA(data=data, filter_bias=bias)
    cov = np.cov(data, rowvar=False, bias=True)
    values, vectors = np.linalg.eigh(cov + bias * np.eye(4))
    expected = vectors.dot(np.diag(values ** -0.5)).dot(vectors.T)
    np.testing.assert_allclose(zca.P, expected, rtol=1e-5)
    white = zca.apply(data)
    # Covariance of the whitened data: C (C + bias I)^-1.
    np.testing.assert_allclose(
        np.cov(white, rowvar=False, bias=True),
        cov.dot(np.linalg.inv(cov + bias * np.eye(4))), atol=1e-5)
    np.testing.assert_allclose(zca.inv(white), data, rtol=1e-4)


def test_zca_keeps_image_shapes_and_components():
    images = rng.rand(50, 2, 2, 2)
    zca = ZCA(n_components=3, data=images, filter_bias=0.01)
    assert zca.apply(images).shape == images.shape
    assert np.linalg.matrix_rank(zca.P) == 3
    with pytest.raises(ValueError, match='fitted to'):
        zca.apply(rng.rand(5, 8))
    with pytest.raises(RuntimeError, match='before ZCA.fit'):
        ZCA().apply(images)
