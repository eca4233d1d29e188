"""Numerically stable reductions, the importance-weighted bound, metrics."""
import numpy as np
import theano
import theano.tensor as T

__all__ = ['log_sum_exp', 'log_mean_exp', 'one_hot',
           'importance_weighted_bound', 'ConfusionMatrix']


def log_sum_exp(A, axis=None, sum_op=T.sum, keepdims=False):
    """log(sum_op(exp(A))) along `axis` without overflow or underflow.

    The signature is the original Parmesan's, with `keepdims` added as a
    keyword: ``log_sum_exp(A, 1, T.mean)`` is the log-mean-exp.

    Parameters
    ----------
    A : Theano tensor
    axis : int, tuple of ints or None
        Axes to reduce; None reduces all.
    sum_op : callable(tensor, axis=..., keepdims=True)
        The reduction of the exponentials: ``T.sum`` (default) or ``T.mean``.
    keepdims : bool
        Keep the reduced axes with length 1 (by keyword only in the
        original's spirit; the third positional argument is `sum_op`).

    Returns
    -------
    Theano tensor. A slice whose largest entry is +inf gives +inf, one of
    all -inf gives -inf.

    Raises
    ------
    TypeError
        If `sum_op` is not callable (e.g. a `keepdims` flag passed as the
        third positional argument).

    Examples
    --------
    Finite also where exp overflows:

    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from scipy.special import logsumexp
    >>> from parmesan.utils import log_sum_exp
    >>> x = np.array([[1000., 1000.], [-2., 3.]])
    >>> np.allclose(log_sum_exp(T.constant(x), axis=1).eval().ravel(),
    ...             logsumexp(x, axis=1))
    True
    """
    if isinstance(sum_op, (bool, np.bool_)) or not callable(sum_op):
        raise TypeError('log_sum_exp: the third argument is sum_op, a '
                        'reduction such as T.sum or T.mean (as in the '
                        'original Parmesan), got %r; pass keepdims=... by '
                        'keyword' % (sum_op,))
    A = T.as_tensor_variable(A)
    # The shift is a constant for the gradient (it cancels analytically).
    largest = theano.gradient.zero_grad(T.max(A, axis=axis, keepdims=True))
    shift = T.switch(T.isinf(largest), 0, largest)
    reduced = T.log(sum_op(T.exp(A - shift), axis=axis, keepdims=True)) + \
        shift
    # An infinite maximum is the answer itself (+inf dominates the sum, all
    # -inf sums to 0); computing it gives inf - inf = nan, here or in
    # Theano's own log-sum-exp rewrite, which subtracts the maximum again.
    reduced = T.switch(T.isinf(largest), largest, reduced)
    if keepdims:
        return reduced
    return _drop_axes(reduced, axis)


def log_mean_exp(A, axis=None, keepdims=False):
    """log(mean(exp(A))) along `axis`, computed stably: the original
    Parmesan's ``log_sum_exp(A, axis, sum_op=T.mean)``.

    Parameters
    ----------
    A : Theano tensor
    axis : int, tuple of ints or None
    keepdims : bool

    Returns
    -------
    Theano tensor.

    Examples
    --------
    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from parmesan.utils import log_mean_exp
    >>> log_w = np.log([[1., 3.], [2., 2.]])
    >>> np.allclose(log_mean_exp(T.constant(log_w), axis=1).eval().ravel(),
    ...             np.log([2., 2.]))
    True
    """
    return log_sum_exp(A, axis, T.mean, keepdims=keepdims)


def one_hot(labels, num_classes, dtype=None):
    """One-hot rows of integer labels, by comparison with the class indices.

    Theano's ``to_one_hot`` scatters ones into zeros, an op that Theano 1.0's
    GPU backend lacks; a comparison is element-wise and runs there.

    Parameters
    ----------
    labels : Theano integer vector (N,)
        Class indices in [0, num_classes); a row of a label outside is 0.
    num_classes : int or Theano integer scalar
    dtype : str
        Of the result; default ``theano.config.floatX``.

    Returns
    -------
    Theano matrix (N, num_classes): row n is 1 at labels[n], else 0.

    Raises
    ------
    TypeError
        If `labels` is not an integer vector.

    Examples
    --------
    >>> import numpy as np
    >>> from parmesan.utils import one_hot
    >>> labels = np.array([2, 0], dtype='int32')
    >>> np.array_equal(one_hot(labels, 3).eval(), [[0, 0, 1], [1, 0, 0]])
    True
    """
    labels = T.as_tensor_variable(labels)
    if labels.ndim != 1 or not labels.dtype.startswith(('int', 'uint')):
        raise TypeError('one_hot: labels must be an integer vector, got %s '
                        'of dtype %s' % (labels.type, labels.dtype))
    classes = T.arange(num_classes, dtype=labels.dtype)
    return T.cast(T.eq(labels[:, None], classes[None, :]),
                  dtype or theano.config.floatX)


def _drop_axes(x, axis):
    if axis is None:
        return x.flatten()[0] if x.ndim else x
    axes = {a % x.ndim for a in np.atleast_1d(axis)}
    return x.dimshuffle([a for a in range(x.ndim) if a not in axes])


def importance_weighted_bound(log_weights, eq_samples, iw_samples):
    """Per-example importance-weighted bound from batch-major log-weights.

    Parameters
    ----------
    log_weights : Theano vector of length batch * eq_samples * iw_samples
        log p(x, z) - log q(z | x) per sample, in the batch-major layout of
        :class:`parmesan.layers.SampleLayer`: row b*eq*iw + e*iw + i holds
        sample (e, i) of example b.
    eq_samples, iw_samples : int or Theano integer scalar

    Returns
    -------
    Theano vector of length batch: for each example, the mean over the eq
    axis of log (1/iw) sum_i w_{e,i}. With iw_samples=1 this is the
    Monte-Carlo ELBO; with eq_samples=1 the IWAE bound L_k, k=iw_samples.

    Examples
    --------
    Two examples, eq_samples=1, iw_samples=2: L_2 is the log of the mean
    weight of each example.

    >>> import numpy as np
    >>> import theano.tensor as T
    >>> from parmesan.utils import importance_weighted_bound
    >>> log_w = T.constant(np.log([1., 3., 2., 2.]))  # rows: (b=0, i=0), (0, 1), ...
    >>> np.allclose(importance_weighted_bound(log_w, 1, 2).eval(),
    ...             np.log([2., 2.]))
    True

    In a model, ``log_w = log_px_given_z + log_pz - log_qz_given_x`` over
    the samples of :class:`parmesan.layers.SampleLayer`, and the loss is
    ``-importance_weighted_bound(log_w, eq, iw).mean()``.
    """
    if log_weights.ndim != 1:
        raise ValueError('importance_weighted_bound needs a vector of '
                         'per-sample log-weights; got a tensor with %d '
                         'dimensions' % log_weights.ndim)
    per_sample = log_weights.reshape((-1, eq_samples, iw_samples))
    return log_mean_exp(per_sample, axis=2).mean(axis=1)


class ConfusionMatrix(object):
    """Confusion matrix with per-class metrics, accumulated over batches.

    Rows are true classes, columns predicted classes.

    Parameters
    ----------
    n_classes : int
    class_names : list of str, optional

    Examples
    --------
    >>> from parmesan.utils import ConfusionMatrix
    >>> cm = ConfusionMatrix(3)
    >>> cm.batchadd([0, 1, 2, 2], [0, 1, 1, 2])  # predicted, true
    >>> cm.accuracy(), cm.sensitivity().tolist()
    (0.75, [1.0, 0.5, 1.0])
    """

    def __init__(self, n_classes, class_names=None):
        if int(n_classes) < 2:
            raise ValueError('ConfusionMatrix needs n_classes >= 2, got %r'
                             % (n_classes,))
        self.n_classes = int(n_classes)
        if class_names is None:
            class_names = [str(c) for c in range(self.n_classes)]
        if len(class_names) != self.n_classes:
            raise ValueError('got %d class_names for %d classes'
                             % (len(class_names), self.n_classes))
        self.class_names = list(class_names)
        self.zero()

    def zero(self):
        """Reset all counts."""
        self.mat = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)

    def batchadd(self, y_pred, y_true, mask=None):
        """Count a batch. The argument order is Parmesan's: predicted first.

        Parameters
        ----------
        y_pred, y_true : integer arrays of equal length
        mask : array of the same length, optional
            Rows whose mask is 0 are not counted.
        """
        y_pred, y_true = np.ravel(y_pred), np.ravel(y_true)
        if y_pred.shape != y_true.shape:
            raise ValueError('y_pred has %d entries, y_true %d'
                             % (y_pred.size, y_true.size))
        if mask is not None:
            keep = np.ravel(mask).astype(bool)
            y_pred, y_true = y_pred[keep], y_true[keep]
        for name, labels in (('y_pred', y_pred), ('y_true', y_true)):
            if labels.size and (labels.min() < 0 or
                                labels.max() >= self.n_classes):
                raise ValueError('%s holds labels outside 0..%d'
                                 % (name, self.n_classes - 1))
        np.add.at(self.mat, (y_true.astype(int), y_pred.astype(int)), 1)

    def batchaddmask(self, y_true, y_pred, mask):
        """Count the rows of a batch where `mask` is true.

        The original Parmesan's method, with its argument order (true labels
        first, unlike :meth:`batchadd`); there it called a method that did
        not exist.

        Parameters
        ----------
        y_true, y_pred : integer arrays of equal length
        mask : boolean array of the same length (or 0/1 integers)
        """
        mask = np.ravel(mask)
        if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
            raise ValueError('batchaddmask: mask must be boolean or hold '
                             'only 0 and 1, got values %s'
                             % np.unique(mask)[:5].tolist())
        if mask.size != np.size(y_true):
            raise ValueError('batchaddmask: mask has %d entries, y_true %d'
                             % (mask.size, np.size(y_true)))
        self.batchadd(y_pred, y_true, mask=mask)

    def geterrors(self):
        """Per-class counts (tp, fn, fp, tn), each an array of n_classes."""
        tp = np.diag(self.mat).astype(float)
        fn = self.mat.sum(axis=1) - tp
        fp = self.mat.sum(axis=0) - tp
        tn = self.mat.sum() - tp - fn - fp
        return tp, fn, fp, tn

    @staticmethod
    def _ratio(num, den):
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)

    def accuracy(self):
        """Fraction of all counted examples classified correctly."""
        return np.trace(self.mat) / float(self.mat.sum())

    def sensitivity(self):
        """Per-class recall, tp / (tp + fn)."""
        tp, fn, fp, tn = self.geterrors()
        return self._ratio(tp, tp + fn)

    def specificity(self):
        """Per-class tn / (tn + fp)."""
        tp, fn, fp, tn = self.geterrors()
        return self._ratio(tn, tn + fp)

    def positivepredictivevalue(self):
        """Per-class precision, tp / (tp + fp)."""
        tp, fn, fp, tn = self.geterrors()
        return self._ratio(tp, tp + fp)

    def negativepredictivevalue(self):
        """Per-class tn / (tn + fn)."""
        tp, fn, fp, tn = self.geterrors()
        return self._ratio(tn, tn + fn)

    def falsepositiverate(self):
        """Per-class fp / (fp + tn)."""
        tp, fn, fp, tn = self.geterrors()
        return self._ratio(fp, fp + tn)

    def falsediscoveryrate(self):
        """Per-class fp / (tp + fp)."""
        tp, fn, fp, tn = self.geterrors()
        return self._ratio(fp, tp + fp)

    def F1(self):
        """Per-class F1 score, 2 tp / (2 tp + fp + fn)."""
        tp, fn, fp, tn = self.geterrors()
        return self._ratio(2 * tp, 2 * tp + fp + fn)

    def matthewscorrelation(self):
        """Per-class (one-vs-rest) Matthews correlation coefficient."""
        tp, fn, fp, tn = self.geterrors()
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return self._ratio(tp * tn - fp * fn, den)

    def __str__(self):
        width = max(6, max(len(n) for n in self.class_names) + 1)
        head = ' ' * width + ''.join(n.rjust(width) for n in self.class_names)
        rows = [name.rjust(width) + ''.join(str(c).rjust(width) for c in row)
                for name, row in zip(self.class_names, self.mat)]
        return '\n'.join([head] + rows +
                         ['accuracy: %.4f' % self.accuracy()])
