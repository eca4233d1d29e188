"""Benchmark datasets: MNIST (grey-level, fixed and dynamic binarisation)
and the 28x28 Omniglot of Burda et al. (2015).

The module is plain numpy/scipy and deliberately never imports Theano or
Lasagne, so data can be prepared without paying for their start-up.

Every loader looks for its files in one folder, resolved by
:func:`get_data_dir`: the ``data_dir`` argument, else the environment
variable ``PARMESAN_DATA``, else ``~/.parmesan/data``. Files with a known
md5 are verified before use (once per process for an unchanged file). A
missing file is downloaded into that folder when ``download=True`` and a
download address is known; anything that goes wrong -- missing, truncated
or corrupt files, failed downloads -- raises :class:`DatasetError`, whose
message names the file and says how to fix it.

.. autosummary::
    :nosignatures:

    DatasetError
    get_data_dir
    load_mnist_realval
    load_mnist_binarized
    load_mnist_dynamic
    binarize
    load_omniglot_iwae
    select_balanced_labels
"""
import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import zlib

import numpy as np

__all__ = [
    "DatasetError",
    "get_data_dir",
    "load_mnist_realval",
    "load_mnist_binarized",
    "load_mnist_dynamic",
    "binarize",
    "load_omniglot_iwae",
    "select_balanced_labels",
]

DATA_DIR_ENV = 'PARMESAN_DATA'
DEFAULT_DATA_DIR = os.path.join('~', '.parmesan', 'data')

_MNIST_URL = 'http://yann.lecun.com/exdb/mnist/'
_LAROCHELLE_URL = ('http://www.cs.toronto.edu/~larocheh/public/datasets/'
                   'binarized_mnist/')
_OMNIGLOT_URL = ('https://github.com/yburda/iwae/raw/master/datasets/'
                 'OMNIGLOT/chardata.mat')

#: md5 of every file whose exact bytes are known. The binarized-MNIST md5s
#: are those of the gzipped copies described in the shared data README;
#: the uncompressed ``.amat`` files served by the Toronto site have no
#: published checksum and are validated by their strict layout instead.
KNOWN_MD5 = {
    'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
    'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
    't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
    't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
    'binarized_mnist_train.amat.gz': '568ed3d12de5c016418b71be4817024f',
    'binarized_mnist_valid.amat.gz': 'd4f45de8f6bb8b7ec85d39ee5076bc58',
    'binarized_mnist_test.amat.gz': 'c799349346e7542e92eb80e9452ca6ce',
}

#: Where a missing file can be downloaded from, by the name it is stored
#: under. Larochelle's files are served uncompressed and kept that way.
DOWNLOAD_URLS = dict(
    [(name, _MNIST_URL + name) for name in (
        'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
        't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')] +
    [(name, _LAROCHELLE_URL + name) for name in (
        'binarized_mnist_train.amat', 'binarized_mnist_valid.amat',
        'binarized_mnist_test.amat')] +
    [('chardata.mat', _OMNIGLOT_URL)])

_MNIST_PIXELS = 28 * 28
_N_MNIST_TRAIN = 50000
_BINARIZED_ROWS = {'train': 50000, 'valid': 10000, 'test': 10000}

# (realpath, mtime_ns, size, md5) of files already verified in this process;
# hashing the 9.9 MB training images on every load would be wasted work.
_verified_files = set()


class DatasetError(OSError):
    """A dataset file is missing, corrupt or could not be downloaded.

    The message names the file and says what to do about it.
    """


def get_data_dir(data_dir=None):
    """Return the folder the dataset loaders read from and download to.

    Parameters
    ----------
    data_dir : str, path-like or None
        Folder to use. If None, the environment variable ``PARMESAN_DATA``
        is used if set and non-empty, else ``~/.parmesan/data``. The value
        is resolved on every call, so changing the environment takes effect
        at once.

    Returns
    -------
    str
        Absolute path with ``~`` expanded. The folder need not exist; it is
        created only when a file is downloaded into it.

    Examples
    --------
    >>> get_data_dir('/data/mnist')
    '/data/mnist'
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def load_mnist_realval(data_dir=None, download=True):
    """Load grey-level MNIST with the standard 50k/10k/10k split.

    The training set is the first 50000 images of the official 60000-image
    training file, the validation set its last 10000, and the test set the
    official 10000 test images, all in their original order.

    Pixels are scaled by 1/255, so 255 (full ink) maps to exactly 1.0. The
    deeplearning.net ``mnist.pkl.gz`` that earlier versions of Parmesan
    loaded reportedly divides by 256 instead, so its values are 255/256 of
    these (e.g. a maximum of 0.996); results that depend on the exact
    pixel scale are not bit-comparable between the two.

    Parameters
    ----------
    data_dir : str, path-like or None
        Folder holding the four gzipped IDX files
        ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``;
        see :func:`get_data_dir`.
    download : bool
        Download missing files from ``http://yann.lecun.com/exdb/mnist/``.

    Returns
    -------
    x_train, t_train, x_valid, t_valid, x_test, t_test : numpy arrays
        Images are float32 of shape (N, 784) in [0, 1], rows of the 28x28
        image concatenated (row-major); labels are int32 in 0..9.

    Raises
    ------
    DatasetError
        If a file is missing and cannot be downloaded, or is corrupt.

    Examples
    --------
    >>> x_train, t_train, x_valid, t_valid, x_test, t_test = \\
    ...     load_mnist_realval()                          # doctest: +SKIP
    >>> x_train.shape, x_valid.shape, x_test.shape        # doctest: +SKIP
    ((50000, 784), (10000, 784), (10000, 784))
    """
    data_dir = get_data_dir(data_dir)
    x_full = _load_mnist_images('train-images-idx3-ubyte.gz', 60000,
                                data_dir, download)
    t_full = _load_mnist_labels('train-labels-idx1-ubyte.gz', 60000,
                                data_dir, download)
    x_test = _load_mnist_images('t10k-images-idx3-ubyte.gz', 10000,
                                data_dir, download)
    t_test = _load_mnist_labels('t10k-labels-idx1-ubyte.gz', 10000,
                                data_dir, download)
    split = _N_MNIST_TRAIN
    return (x_full[:split], t_full[:split], x_full[split:], t_full[split:],
            x_test, t_test)


def load_mnist_binarized(data_dir=None, download=True):
    """Load the fixed binarisation of MNIST by Larochelle & Murray (2011).

    This is the statically binarised MNIST on which VAE papers (e.g. IWAE,
    Burda et al. 2015) report test log-likelihoods. It has no labels.

    Row order matters for mini-batch statistics: the **test** split is
    sorted by class (all 0s, then all 1s, ...; within a class the original
    MNIST test order), while train and valid are shuffled subsets of the
    MNIST training images (not its first 50k and last 10k). Shuffle before
    training or evaluating in batches where that matters.

    Parameters
    ----------
    data_dir : str, path-like or None
        Folder holding ``binarized_mnist_{train,valid,test}.amat.gz`` (gzip,
        md5-checked) or the uncompressed ``binarized_mnist_*.amat`` as served
        by Larochelle (no published md5; its layout is validated instead).
        If both exist the gzipped file is used. See :func:`get_data_dir`.
    download : bool
        Download missing splits from Larochelle's site; they are stored
        uncompressed under the ``.amat`` name.

    Returns
    -------
    x_train, x_valid, x_test : numpy arrays
        float32 arrays of shape (50000, 784), (10000, 784) and (10000, 784)
        holding 0.0 and 1.0, pixels row-major as in MNIST.

    Raises
    ------
    DatasetError
        If a file is missing and cannot be downloaded, is corrupt, or is not
        a 784-column text matrix of 0s and 1s.

    Examples
    --------
    >>> x_train, x_valid, x_test = load_mnist_binarized()  # doctest: +SKIP
    >>> sorted(set(x_test.ravel()))                         # doctest: +SKIP
    [0.0, 1.0]
    """
    data_dir = get_data_dir(data_dir)
    return tuple(_load_binarized_split(split, data_dir, download)
                 for split in ('train', 'valid', 'test'))


def binarize(x, rng):
    """Draw a binary sample with ``P(pixel = 1) = x``, independently.

    This is dynamic binarisation: calling it on the grey-level training
    images once per epoch gives a fresh binary data set each time, which
    regularises density models much better than one fixed binarisation.

    Parameters
    ----------
    x : array_like
        Probabilities in [0, 1], e.g. MNIST pixels scaled by 1/255.
    rng : numpy.random.RandomState or numpy.random.Generator
        Source of randomness; pass a seeded one for reproducible samples.

    Returns
    -------
    numpy.ndarray
        float32 array of x's shape holding 0.0 and 1.0. Pixels with x = 0
        are always 0 and pixels with x = 1 always 1.

    Examples
    --------
    >>> rng = np.random.RandomState(42)
    >>> binarize(np.array([0.0, 1.0, 1.0]), rng)
    array([0., 1., 1.], dtype=float32)
    """
    x = np.asarray(x)
    if isinstance(rng, np.random.Generator):
        # float32 uniforms halve the memory for a 50000x784 epoch sample.
        uniform = rng.random(x.shape, dtype=np.float32)
    else:
        uniform = rng.random_sample(x.shape)
    return (uniform < x).astype(np.float32)


def load_mnist_dynamic(data_dir=None, download=True, eval_seed=1234):
    """Load MNIST for dynamic binarisation, with fixed evaluation sets.

    The training images stay grey-level, to be re-binarised every epoch
    with :func:`binarize`. The validation and test images are binarised
    once here, from ``np.random.RandomState(eval_seed + 1)`` and
    ``np.random.RandomState(eval_seed)`` respectively, so that evaluation
    numbers of different runs and different models are computed on the
    same binary images. The split is that of :func:`load_mnist_realval`.

    Parameters
    ----------
    data_dir : str, path-like or None
        Folder holding the MNIST IDX files; see :func:`load_mnist_realval`.
    download : bool
        Download missing files.
    eval_seed : int
        Seed of the test binarisation; the validation set uses
        ``eval_seed + 1``.

    Returns
    -------
    x_train, t_train, x_valid, t_valid, x_test, t_test : numpy arrays
        x_train is float32 (50000, 784) in [0, 1]; x_valid and x_test are
        float32 (10000, 784) in {0, 1}; labels are int32.

    Examples
    --------
    >>> (x_train, t_train, x_valid, t_valid,
    ...  x_test, t_test) = load_mnist_dynamic()             # doctest: +SKIP
    >>> rng = np.random.RandomState(0)                      # doctest: +SKIP
    >>> for epoch in range(n_epochs):                       # doctest: +SKIP
    ...     train_on(binarize(x_train, rng))
    """
    x_train, t_train, x_valid, t_valid, x_test, t_test = load_mnist_realval(
        data_dir, download)
    x_valid = binarize(x_valid, np.random.RandomState(eval_seed + 1))
    x_test = binarize(x_test, np.random.RandomState(eval_seed))
    return x_train, t_train, x_valid, t_valid, x_test, t_test


def load_omniglot_iwae(path_or_data_dir=None, download=True):
    """Load the 28x28 Omniglot of Burda et al. (2015), ``chardata.mat``.

    24345 training and 8070 test images of handwritten characters from 50
    alphabets, downsampled to 28x28 for the IWAE paper. No validation split
    is made here; IWAE shuffled the training set with
    ``np.random.RandomState(123).permutation`` and held out the last 1345.

    The file stores images as columns of MATLAB's column-major ``img(:)``.
    Like the IWAE code (``data.T.reshape((-1, 28, 28)).reshape((-1, 784),
    order='F')``) this loader converts them to the row-major order of
    MNIST, so ``x[i].reshape(28, 28)`` shows the character upright. (The
    earlier Parmesan loader returned ``data.T`` unchanged, i.e. every image
    transposed; that is harmless for fully connected models but not for
    convolutions or plots.)

    Parameters
    ----------
    path_or_data_dir : str, path-like or None
        The ``.mat`` file, or a folder holding ``chardata.mat``; if None,
        ``chardata.mat`` in :func:`get_data_dir`. No md5 is known for this
        file, so it is only checked for the expected variables and shapes.
    download : bool
        Download the file from the IWAE repository if it is missing.

    Returns
    -------
    x_train, t_train, char_train, x_test, t_test, char_test : numpy arrays
        Images are float32 of shape (N, 784) in [0, 1], row-major. ``t_*``
        are int32 alphabet labels in 0..49 (``argmax`` of the one-hot
        ``target``); ``char_*`` are int32 character indices within the
        alphabet, 0-based (the file's 1-based ``targetchar`` minus 1).

    Raises
    ------
    DatasetError
        If the file is missing and cannot be downloaded, or does not hold
        the expected variables.

    Examples
    --------
    >>> (x_train, t_train, char_train,
    ...  x_test, t_test, char_test) = load_omniglot_iwae()  # doctest: +SKIP
    >>> x_train.shape, x_test.shape                         # doctest: +SKIP
    ((24345, 784), (8070, 784))
    """
    if path_or_data_dir is None:
        path = os.path.join(get_data_dir(), 'chardata.mat')
    else:
        path = get_data_dir(path_or_data_dir)
        if os.path.isdir(path):
            path = os.path.join(path, 'chardata.mat')
    if not os.path.isfile(path):
        _download_or_fail(path, DOWNLOAD_URLS['chardata.mat'], download)

    # scipy is only needed here; importing it lazily keeps MNIST loading
    # light.
    import scipy.io
    try:
        mat = scipy.io.loadmat(path)
    except Exception as error:
        raise _corrupt(path, 'scipy.io.loadmat cannot read it (%s)' % error,
                       DOWNLOAD_URLS['chardata.mat']) from error
    train = _omniglot_split(mat, 'data', 'target', 'targetchar', path)
    test = _omniglot_split(mat, 'testdata', 'testtarget', 'testtargetchar',
                           path)
    return train + test


def select_balanced_labels(labels, n_per_class, seed):
    """Choose the same number of labelled examples from every class.

    Semi-supervised benchmarks (M2, ladder networks) train with e.g. 100
    labels, 10 per class; this picks them reproducibly.

    Parameters
    ----------
    labels : array_like
        Integer class label of every example, shape (N,).
    n_per_class : int
        How many examples to choose from each class present in `labels`.
    seed : int
        Seed of the ``np.random.RandomState`` the examples are drawn with.

    Returns
    -------
    numpy.ndarray
        Sorted indices into `labels`, ``n_per_class`` for each class.

    Raises
    ------
    ValueError
        If a class has fewer than `n_per_class` examples.

    Examples
    --------
    >>> labels = np.array([0, 1, 0, 1, 1, 0])
    >>> select_balanced_labels(labels, 2, seed=1)
    array([0, 3, 4, 5])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError("labels must be one-dimensional, got shape %s"
                         % (labels.shape,))
    if n_per_class < 1:
        raise ValueError("n_per_class must be positive, got %r"
                         % (n_per_class,))
    rng = np.random.RandomState(seed)
    chosen = []
    for label in np.unique(labels):
        candidates = np.flatnonzero(labels == label)
        if len(candidates) < n_per_class:
            raise ValueError("class %r has only %d examples, fewer than "
                             "n_per_class=%d" % (label.item(),
                                                 len(candidates),
                                                 n_per_class))
        chosen.append(rng.choice(candidates, n_per_class, replace=False))
    return np.sort(np.concatenate(chosen))


# --- file access -----------------------------------------------------------

def _fetch(name, data_dir, download):
    """Path of `name` in `data_dir`, downloading it first if needed."""
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        _download_or_fail(path, DOWNLOAD_URLS.get(name), download)
    return path


def _download_or_fail(path, url, download):
    """Download the missing file `path` from `url`, or raise DatasetError."""
    name = os.path.basename(path)
    wanted = name
    if name + '.gz' in KNOWN_MD5:
        wanted = "%s or %s.gz" % (name, name)
    how_to_fix = ("Set the environment variable %s or pass data_dir=... to a "
                  "folder holding %s." % (DATA_DIR_ENV, wanted))
    if url is not None:
        how_to_fix = ("Download %s into %s, or set the environment variable "
                      "%s or pass data_dir=... to a folder holding %s."
                      % (url, os.path.dirname(path), DATA_DIR_ENV, wanted))
    if not download or url is None:
        raise DatasetError("Dataset file not found: %s. %s"
                           % (path, how_to_fix))
    try:
        _download(url, path)
    except Exception as error:
        raise DatasetError("Dataset file not found: %s, and downloading it "
                           "from %s failed (%s). %s"
                           % (path, url, error, how_to_fix)) from error
    expected_md5 = KNOWN_MD5.get(name)
    if expected_md5 is not None:
        try:
            _verify_md5(path, expected_md5)
        except DatasetError:
            # A bad download must not be picked up by the next call.
            os.remove(path)
            raise


def _download(url, path):
    # Imported here: urllib.request pulls in http.client and ssl, which
    # would more than double this module's import time for a rare need.
    import urllib.request
    # Writing to a temporary file in the target folder and renaming it
    # means an interrupted download never leaves a truncated file behind
    # under the real name.
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, partial = tempfile.mkstemp(
        dir=folder, prefix='.' + os.path.basename(path) + '.',
        suffix='.part')
    try:
        with os.fdopen(handle, 'wb') as out:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
        os.replace(partial, path)
    except BaseException:
        os.remove(partial)
        raise


def _corrupt(path, reason, url=None):
    source = (" from %s" % url) if url else ""
    return DatasetError("Dataset file %s is corrupt: %s. Delete it and "
                        "download it again%s." % (path, reason, source))


def _file_md5(path):
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _verify_md5(path, expected_md5):
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size,
           expected_md5)
    if key in _verified_files:
        return
    actual_md5 = _file_md5(path)
    if actual_md5 != expected_md5:
        raise _corrupt(path, "its md5 is %s, expected %s"
                       % (actual_md5, expected_md5),
                       DOWNLOAD_URLS.get(os.path.basename(path)))
    _verified_files.add(key)


def _read_verified(path):
    """Bytes of `path`: checked against its known md5, gunzipped if .gz."""
    name = os.path.basename(path)
    if name in KNOWN_MD5:
        _verify_md5(path, KNOWN_MD5[name])
    with open(path, 'rb') as f:
        raw = f.read()
    if not name.endswith('.gz'):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise _corrupt(path, "it cannot be decompressed (%s: %s)"
                       % (type(error).__name__, error),
                       DOWNLOAD_URLS.get(name)) from error


# --- MNIST IDX files ---------------------------------------------------------

def _parse_idx(data, shape, path):
    """Array of unsigned bytes with the given shape from IDX `data`.

    IDX: big-endian magic 0x0000 08 <ndim> (0x08 = unsigned byte), then the
    ndim sizes as uint32, then the values.
    """
    header_size = 4 * (1 + len(shape))
    url = DOWNLOAD_URLS.get(os.path.basename(path))
    if len(data) < header_size:
        raise _corrupt(path, "it is shorter than its IDX header", url)
    magic, *sizes = struct.unpack('>%dI' % (1 + len(shape)),
                                  data[:header_size])
    expected_magic = 0x0800 + len(shape)
    if magic != expected_magic:
        raise _corrupt(path, "its IDX magic number is 0x%08x, expected "
                       "0x%08x" % (magic, expected_magic), url)
    if tuple(sizes) != tuple(shape):
        raise _corrupt(path, "its IDX header gives shape %s, expected %s"
                       % (tuple(sizes), tuple(shape)), url)
    if len(data) != header_size + int(np.prod(shape)):
        raise _corrupt(path, "it holds %d bytes of data, its header "
                       "announces %d" % (len(data) - header_size,
                                         int(np.prod(shape))), url)
    return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


def _load_mnist_images(name, n_images, data_dir, download):
    path = _fetch(name, data_dir, download)
    pixels = _parse_idx(_read_verified(path), (n_images, 28, 28), path)
    return (pixels.reshape(n_images, _MNIST_PIXELS).astype(np.float32) /
            np.float32(255))


def _load_mnist_labels(name, n_labels, data_dir, download):
    path = _fetch(name, data_dir, download)
    labels = _parse_idx(_read_verified(path), (n_labels,), path)
    if labels.max() > 9:
        raise _corrupt(path, "it holds label %d, MNIST labels are 0..9"
                       % labels.max(), DOWNLOAD_URLS.get(name))
    return labels.astype(np.int32)


# --- Larochelle's binarized MNIST ------------------------------------------

def _load_binarized_split(split, data_dir, download):
    name = 'binarized_mnist_%s.amat' % split
    gzipped = os.path.join(data_dir, name + '.gz')
    path = gzipped if os.path.isfile(gzipped) else _fetch(name, data_dir,
                                                          download)
    return _parse_amat(_read_verified(path), _BINARIZED_ROWS[split], path)


def _parse_amat(text, n_rows, path):
    """(n_rows, 784) float32 array from an .amat text matrix of 0s and 1s.

    np.loadtxt needs a minute for the training split; decoding the bytes
    with numpy takes well under a second. Files laid out exactly as
    '0 1 ... 0\\n' (every value one byte followed by one separator byte)
    take a fast path; other whitespace is handled by the slower
    :func:`_parse_amat_any_whitespace`.
    """
    if len(text) == n_rows * _MNIST_PIXELS * 2:
        # As little-endian uint16, the pair (digit, separator) is
        # digit + 256 * separator, so one comparison checks both bytes.
        pairs = np.frombuffer(text, '<u2').reshape(n_rows, _MNIST_PIXELS)
        value_mask = np.uint16(0xFFFE)
        in_line = (pairs[:, :-1] & value_mask) == ord('0') + 256 * ord(' ')
        at_end = (pairs[:, -1] & value_mask) == ord('0') + 256 * ord('\n')
        if in_line.all() and at_end.all():
            return (pairs & 1).astype(np.float32)
    return _parse_amat_any_whitespace(text, n_rows, path)


def _parse_amat_any_whitespace(text, n_rows, path):
    url = DOWNLOAD_URLS.get(os.path.basename(path))
    if not text:
        raise _corrupt(path, "it is empty", url)
    chars = np.frombuffer(text, np.uint8)
    is_value = (chars == ord('0')) | (chars == ord('1'))
    is_space = np.isin(chars, np.frombuffer(b' \t\r\n\v\f', np.uint8))
    unexpected = np.flatnonzero(~(is_value | is_space))
    if unexpected.size:
        raise _corrupt(path, "byte %d is %r; an .amat binarized MNIST holds "
                       "only 0, 1 and whitespace"
                       % (unexpected[0], bytes(chars[unexpected[:1]])), url)
    if (is_value[1:] & is_value[:-1]).any():
        raise _corrupt(path, "it holds values other than single 0s and 1s",
                       url)
    line_starts = np.concatenate(
        [[0], np.flatnonzero(chars[:-1] == ord('\n')) + 1])
    values_per_line = np.add.reduceat(is_value.view(np.uint8), line_starts,
                                      dtype=np.int64)
    values_per_line = values_per_line[values_per_line > 0]
    if values_per_line.size != n_rows or (values_per_line !=
                                          _MNIST_PIXELS).any():
        raise _corrupt(path, "expected %d lines of %d values, found %d "
                       "non-empty lines holding %s values"
                       % (n_rows, _MNIST_PIXELS, values_per_line.size,
                          np.unique(values_per_line).tolist()), url)
    values = chars[is_value] - ord('0')
    return values.reshape(n_rows, _MNIST_PIXELS).astype(np.float32)


# --- Omniglot ----------------------------------------------------------------

def _omniglot_split(mat, images_key, alphabet_key, character_key, path):
    missing = [key for key in (images_key, alphabet_key, character_key)
               if key not in mat]
    if missing:
        found = sorted(key for key in mat if not key.startswith('__'))
        raise _corrupt(path, "it lacks the variable(s) %s (found %s); "
                       "expected Burda et al.'s chardata.mat"
                       % (', '.join(missing), ', '.join(found)),
                       _OMNIGLOT_URL)
    images = np.asarray(mat[images_key])
    one_hot = np.asarray(mat[alphabet_key])
    characters = np.asarray(mat[character_key]).ravel()
    if images.ndim != 2 or images.shape[0] != _MNIST_PIXELS:
        raise _corrupt(path, "%s has shape %s, expected (784, N)"
                       % (images_key, images.shape), _OMNIGLOT_URL)
    n_images = images.shape[1]
    if one_hot.ndim != 2 or one_hot.shape[1] != n_images or \
            characters.size != n_images:
        raise _corrupt(path, "%s %s and %s %s do not match %s %s"
                       % (alphabet_key, one_hot.shape, character_key,
                          np.shape(mat[character_key]), images_key,
                          images.shape), _OMNIGLOT_URL)
    # Each column is MATLAB's column-major img(:); read it back in Fortran
    # order and flatten row-major, exactly like the IWAE code does.
    images = images.T.reshape(n_images, 28, 28).transpose(0, 2, 1)
    images = images.reshape(n_images, _MNIST_PIXELS).astype(np.float32)
    if images.size and (images.min() < 0 or images.max() > 1):
        raise _corrupt(path, "%s has values outside [0, 1]" % images_key,
                       _OMNIGLOT_URL)
    alphabets = np.argmax(one_hot, axis=0).astype(np.int32)
    return images, alphabets, characters.astype(np.int32) - 1
