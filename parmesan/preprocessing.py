"""Input preprocessing of the ladder network's experiments: per-example
contrast normalisation and ZCA whitening (numpy only).

The original Parmesan shipped both classes but made their constructors
raise ``Warning('... untested!')``; here they work, and are tested against
their defining formulas.
"""
import numpy as np

__all__ = ['ContrastNorm', 'ZCA']


def _as_matrix(data, what):
    data = np.asarray(data)
    if data.ndim < 2:
        raise ValueError('%s needs one example per row (at least 2 '
                         'dimensions), got shape %s' % (what, data.shape))
    return data.reshape(len(data), -1)


class ContrastNorm(object):
    """Global contrast normalisation of every example.

    Each example (flattened) has its mean removed and is scaled to an L2
    norm of `scale`; examples whose norm is below ``epsilon * scale`` (flat
    images) are only centred.

    Parameters
    ----------
    scale : float
    epsilon : float

    Example
    -------
    >>> x = np.array([[1., 2., 3.], [5., 5., 5.]])
    >>> ContrastNorm(scale=1.).apply(x, copy=True)
    array([[-0.70710678,  0.        ,  0.70710678],
           [ 0.        ,  0.        ,  0.        ]])
    """

    def __init__(self, scale=55, epsilon=1e-8):
        if not scale > 0 or epsilon < 0:
            raise ValueError('ContrastNorm needs scale > 0 and epsilon >= 0, '
                             'got %r and %r' % (scale, epsilon))
        self.scale = np.float32(scale)
        self.epsilon = np.float32(epsilon)

    def apply(self, data, copy=False):
        """Normalise `data` (N, ...) example by example.

        Parameters
        ----------
        data : float array, one example per row
        copy : bool
            If False (the original's default), a float array is changed in
            place.

        Returns
        -------
        The normalised array, of the shape of `data`.
        """
        data = np.asarray(data)
        if copy or not np.issubdtype(data.dtype, np.floating):
            data = np.array(data, dtype=np.result_type(data, np.float32))
        rows = _as_matrix(data, 'ContrastNorm')
        rows -= rows.mean(axis=1, keepdims=True)
        norms = np.sqrt((rows ** 2).sum(axis=1)) / self.scale
        norms[norms < self.epsilon] = 1
        rows /= norms[:, None]
        return rows.reshape(data.shape)


class ZCA(object):
    """ZCA whitening: ``(x - mean) P`` with ``P = C^(-1/2)``.

    ``C`` is the examples' covariance plus ``filter_bias`` times the
    identity, which keeps the weakest directions from being amplified
    without bound; ``P`` is symmetric, so whitened images stay images.

    Parameters
    ----------
    n_components : int or None
        Keep only the directions of the largest `n_components` eigenvalues
        (all when None).
    data : array (N, ...) or None
        If given, fit to it at once.
    filter_bias : float

    Example
    -------
    >>> rng = np.random.RandomState(0)
    >>> x = rng.randn(500, 3).dot([[2., 0., 0.], [1., 1., 0.], [0., 0., 3.]])
    >>> white = ZCA(data=x, filter_bias=0.).apply(x)
    >>> np.round(np.cov(white, rowvar=False, bias=True), 6) + 0.
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """

    def __init__(self, n_components=None, data=None, filter_bias=0.1):
        if filter_bias < 0:
            raise ValueError('ZCA needs filter_bias >= 0, got %r'
                             % (filter_bias,))
        self.filter_bias = filter_bias
        self.n_components = n_components
        self.P = self.P_inv = self.mean = None
        self.shape = None
        self.is_fit = False
        if data is not None:
            self.fit(n_components, data)

    def fit(self, n_components, data):
        """Estimate the mean and the whitening matrix from `data`.

        Parameters
        ----------
        n_components : int or None
        data : array (N, ...), one example per row
        """
        rows = _as_matrix(data, 'ZCA.fit').astype(np.float64)
        self.shape = np.shape(data)[1:]
        self.n_components = n_components
        self.mean = rows.mean(axis=0)
        cov = np.cov(rows, rowvar=False, bias=True).reshape(
            rows.shape[1], rows.shape[1])
        eigenvalues, eigenvectors = np.linalg.eigh(
            cov + self.filter_bias * np.eye(len(cov)))
        if eigenvalues.min() <= 0:
            raise ValueError('ZCA.fit: the covariance is singular; use a '
                             'filter_bias > 0')
        if n_components is not None:
            eigenvalues = eigenvalues[-n_components:]
            eigenvectors = eigenvectors[:, -n_components:]
        root = np.sqrt(eigenvalues)
        self.P = (eigenvectors / root).dot(eigenvectors.T).astype(np.float32)
        self.P_inv = (eigenvectors * root).dot(eigenvectors.T).astype(
            np.float32)
        self.is_fit = True
        return self

    def _check(self, data, method):
        if not self.is_fit:
            raise RuntimeError('ZCA.%s before ZCA.fit' % method)
        if np.shape(data)[1:] != self.shape:
            raise ValueError('ZCA.%s: examples of shape %s, fitted to %s'
                             % (method, np.shape(data)[1:], self.shape))
        return _as_matrix(data, 'ZCA.' + method)

    def apply(self, data, remove_mean=True):
        """Whiten `data` (N, ...), returned in its shape."""
        rows = self._check(data, 'apply')
        centred = rows - self.mean if remove_mean else rows
        return centred.dot(self.P).reshape(np.shape(data))

    def inv(self, data, add_mean=True):
        """Undo :meth:`apply` (exactly, when all components are kept)."""
        rows = self._check(data, 'inv').dot(self.P_inv)
        if add_mean:
            rows = rows + self.mean
        return rows.reshape(np.shape(data))
