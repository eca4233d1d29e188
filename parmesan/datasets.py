"""Benchmark datasets: MNIST (grey-level, fixed and dynamic binarisation),
the 28x28 Omniglot of Burda et al. (2015), and the other data sets the
original Parmesan loaded (CIFAR-10, SVHN, small NORB, STL-10, Frey faces,
LFW, Omniglot 32x32, 20 newsgroups, RCV1, rotten tomatoes).

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

The loaders keep the original Parmesan's names, argument order and return
values. Its ``dataset`` argument is accepted too: a folder is used as the
data folder, and a file the original loader wrote or read (such as the
deeplearning.net ``mnist.pkl.gz`` or its cached ``.cpkl`` pickles) is read
as the original read it. The LFW, 20 newsgroups and RCV1 loaders need
scikit-learn (and 20 newsgroups also nltk), which Parmesan does not
install: they raise an ImportError saying so when it is absent.

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
    load_cifar10
    load_svhn
    load_norb_small
    load_stl10
    load_frey_faces
    load_lfw
    load_omniglot
    load_20newsgroup
    load_rcv1
    load_rotten_tomatoes
"""
import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import zipfile
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
    "load_cifar10",
    "load_svhn",
    "load_norb_small",
    "load_stl10",
    "load_frey_faces",
    "load_lfw",
    "load_omniglot",
    "load_20newsgroup",
    "load_rcv1",
    "load_rotten_tomatoes",
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
    # deeplearning.net's pickle, which the original Parmesan loaded.
    'mnist.pkl.gz': 'a02cd19f81d51c426d7ca14024243ce9',
    'cifar-10-python.tar.gz': 'c58f30108f718f92721af3b95e74349a',
    'train_32x32.mat': 'e26dedcc434d2e4c54c9b2d4a06d8373',
    'test_32x32.mat': 'eb5a983be6a315427106f1b164d9cef3',
    'extra_32x32.mat': 'a93ce644f1a588dc4d68dda5feec44a7',
    'stl10_binary.tar.gz': '91f7769df0f17e558f3565bffb0c7dfb',
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
    [('chardata.mat', _OMNIGLOT_URL),
     ('mnist.pkl.gz', 'http://www.iro.umontreal.ca/~lisa/deep/data/mnist/'
                      'mnist.pkl.gz'),
     ('cifar-10-python.tar.gz',
      'http://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'),
     ('stl10_binary.tar.gz',
      'http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz'),
     ('frey_rawface.mat', 'http://www.cs.nyu.edu/~roweis/data/'
                          'frey_rawface.mat'),
     ('rt-polaritydata.tar.gz', 'http://www.cs.cornell.edu/people/pabo/'
                                'movie-review-data/rt-polaritydata.tar.gz')] +
    [(name, 'http://ufldl.stanford.edu/housenumbers/' + name) for name in (
        'train_32x32.mat', 'test_32x32.mat', 'extra_32x32.mat')] +
    [(name, 'https://github.com/brendenlake/omniglot/raw/master/python/' +
      name) for name in ('images_background.zip', 'images_evaluation.zip')] +
    [(name, 'https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/' + name)
     for name in ('smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz',
                  'smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat.gz',
                  'smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat.gz',
                  'smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat.gz')])

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


def load_mnist_realval(data_dir=None, download=True, dataset=None):
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
    dataset : str, path-like or None
        The original Parmesan's argument: the path of deeplearning.net's
        ``mnist.pkl.gz`` (md5-checked, downloaded if missing and
        `download`), read as the original did (pixels / 256, its labels);
        or a folder, used as `data_dir`. Not together with `data_dir`;
        a file given as the first argument is taken as `dataset`.

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
    data_dir, dataset = _positional_original(data_dir, dataset)
    data_dir, path = _original_path(dataset, data_dir, 'load_mnist_realval')
    if path is not None:
        return _load_mnist_pickle(path, download)
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


def load_mnist_binarized(data_dir=None, download=True, dataset=None):
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
    dataset : str, path-like or None
        The original Parmesan's argument: the gzipped pickle of
        ``[x_train, x_valid, x_test]`` its loader wrote (by default
        ``data/mnist_binarized/mnist.pkl.gz``), or a folder, used as
        `data_dir`. Not together with `data_dir`; a file given as the first
        argument is taken as `dataset`.

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
    data_dir, dataset = _positional_original(data_dir, dataset)
    data_dir, path = _original_path(dataset, data_dir,
                                    'load_mnist_binarized')
    if path is not None:
        splits = _load_pickle(path, 'x_train, x_valid, x_test', 3)
        return tuple(_checked_images(np.asarray(split, np.float32), path)
                     for split in splits)
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


def load_omniglot_iwae(path_or_data_dir=None, download=True, dataset=None,
                       transposed=False):
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
    dataset : str, path-like or None
        The original Parmesan's name for `path_or_data_dir` (its folder of
        ``chardata.mat``); give one of the two.
    transposed : bool
        Return every image transposed, as the original Parmesan did, e.g.
        to evaluate a model trained on its images.

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
    if dataset is not None:
        if path_or_data_dir is not None:
            raise ValueError('load_omniglot_iwae: pass dataset (the original '
                             'Parmesan\'s argument) or path_or_data_dir, '
                             'not both')
        path_or_data_dir = dataset
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
    if transposed:
        train, test = ((_transpose_images(split[0], 28, 28),) + split[1:]
                       for split in (train, test))
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
    elsewhere = ("give the trainers --data-dir FOLDER, set the environment "
                 "variable %s or pass data_dir=FOLDER, FOLDER holding %s"
                 % (DATA_DIR_ENV, wanted))
    how_to_fix = elsewhere[0].upper() + elsewhere[1:] + '.'
    if url is not None:
        how_to_fix = ("Download %s into %s, or %s."
                      % (url, os.path.dirname(path), elsewhere))
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
    created = []  # the folders made here, deepest first
    parent = folder
    while parent and not os.path.exists(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
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
        # A failed download leaves no empty data folder (~/.parmesan/data)
        # behind to puzzle the user.
        for made in created:
            try:
                os.rmdir(made)
            except OSError:
                break
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


# --- the original Parmesan's arguments and files ----------------------------

def _positional_original(data_dir, dataset):
    """(data_dir, dataset) with a file given as the first positional
    argument of an MNIST loader taken as the original's `dataset`."""
    if dataset is None and data_dir is not None:
        path = get_data_dir(data_dir)
        if os.path.isfile(path) or path.endswith(('.pkl', '.pkl.gz')):
            return None, data_dir
    return data_dir, dataset


def _original_path(dataset, data_dir, loader, is_folder=False):
    """(folder, file) a loader reads from.

    `dataset` is the original Parmesan's argument: a folder is the data
    folder; anything else names the file the original read (or, for
    loaders whose original took a prefix, its stem). Where the original
    took a folder (`is_folder`), only an existing file is taken as a file.
    `data_dir` is this project's folder argument; only one of the two may
    be given.
    """
    if dataset is None:
        return get_data_dir(data_dir), None
    if data_dir is not None:
        raise ValueError("%s: pass dataset (the original Parmesan's "
                         "argument) or data_dir, not both" % loader)
    path = get_data_dir(dataset)
    if os.path.isdir(path) or (is_folder and not os.path.isfile(path)):
        return path, None
    return os.path.dirname(path), path


def _ensure(path, download):
    """`path`, downloaded first if missing, md5-checked if its name is
    known."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        _download_or_fail(path, DOWNLOAD_URLS.get(name), download)
    if name in KNOWN_MD5:
        _verify_md5(path, KNOWN_MD5[name])
    return path


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and Python's plain types, nothing else.

    The original Parmesan cached its data sets as (Python 2) pickles; a
    pickle may name any callable, so only numpy's array reconstruction is
    let through.
    """

    _ALLOWED = {('numpy.core.multiarray', '_reconstruct'),
                ('numpy.core.multiarray', 'scalar'),
                ('numpy.core.numeric', '_frombuffer'),
                ('numpy', 'ndarray'), ('numpy', 'dtype'),
                # How Python 3's protocol 2 stores bytes.
                ('_codecs', 'encode')}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super(_ArrayUnpickler, self).find_class(module, name)
        raise pickle.UnpicklingError('it refers to %s.%s; a data file may '
                                     'only hold arrays, lists, dicts, '
                                     'numbers and strings' % (module, name))


def _unpickle(raw, path):
    try:
        # latin1 reads Python 2's str of array bytes and of plain text.
        return _ArrayUnpickler(io.BytesIO(raw), encoding='latin1').load()
    except Exception as error:
        raise _corrupt(path, 'it is not a readable pickle of arrays (%s)'
                       % error, DOWNLOAD_URLS.get(os.path.basename(path))
                       ) from error


def _load_pickle(path, contents, length=None):
    """The (gzipped if the file is) pickle at `path`, a list or tuple of
    `length` items described by `contents` when `length` is given."""
    if not os.path.isfile(path):
        raise DatasetError('Dataset file not found: %s (the original '
                           'Parmesan\'s pickle of %s).' % (path, contents))
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] == b'\x1f\x8b':
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise _corrupt(path, 'it cannot be decompressed (%s)' % error
                           ) from error
    loaded = _unpickle(raw, path)
    if length is not None and (not isinstance(loaded, (list, tuple)) or
                               len(loaded) != length):
        raise _corrupt(path, 'expected a pickled list of %d items (%s)'
                       % (length, contents))
    return loaded


def _checked_images(array, path):
    if array.ndim != 2 or array.shape[1] != _MNIST_PIXELS:
        raise _corrupt(path, 'it holds an array of shape %s, expected (N, '
                       '%d)' % (array.shape, _MNIST_PIXELS))
    return array


def _load_mnist_pickle(path, download):
    """deeplearning.net's mnist.pkl.gz, as the original Parmesan read it."""
    if os.path.basename(path) == 'mnist.pkl.gz':
        _ensure(path, download)
    splits = _load_pickle(path, '(train, valid, test) pairs of images and '
                          'labels', 3)
    result = []
    for images, labels in splits:
        result.append(_checked_images(np.asarray(images, np.float32), path))
        result.append(np.asarray(labels).astype(np.int32))
    return tuple(result)


def _transpose_images(images, height, width):
    """Transpose every flattened (height x width) image of a matrix."""
    return images.reshape(-1, height, width).transpose(0, 2, 1).reshape(
        len(images), -1)


def _dequantize_and_scale(arrays, dequantify, normalize, rng):
    """float32 copies of `arrays` with U(0, 1) noise added (`dequantify`,
    Uria et al. 2013) and divided by the maximum of the first
    (`normalize`), as the original Parmesan did."""
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    if dequantify:
        rng = np.random if rng is None else rng
        arrays = [a + rng.uniform(0, 1, size=a.shape).astype(np.float32)
                  for a in arrays]
    if normalize:
        scale = arrays[0].max().astype(np.float32)
        arrays = [a / scale for a in arrays]
    return arrays


def _optional_import(module, loader, package):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError('%s needs %s (module %s), an optional dependency '
                          'that Parmesan does not install: pip install %s'
                          % (loader, package, module, package)) from error


def _loadmat(path):
    import scipy.io
    try:
        return scipy.io.loadmat(path)
    except Exception as error:
        raise _corrupt(path, 'scipy.io.loadmat cannot read it (%s)' % error,
                       DOWNLOAD_URLS.get(os.path.basename(path))) from error


# --- CIFAR-10, SVHN, STL-10 --------------------------------------------------

def _tar_member(tar, name, path):
    try:
        return tar.extractfile(name).read()
    except (KeyError, AttributeError) as error:
        raise _corrupt(path, 'it has no member %s' % name) from error


def load_cifar10(dataset=None, normalize=True, dequantify=True,
                 data_dir=None, download=True, rng=None):
    """Load CIFAR-10 (Krizhevsky 2009) as images in NHWC layout.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: the path of
        ``cifar-10-python.tar.gz``, or a folder holding it. By default the
        file in :func:`get_data_dir`.
    normalize : bool
        Divide by the training set's maximum (after dequantisation).
    dequantify : bool
        Add U(0, 1) noise to the integer pixels (Uria et al. 2013).
    data_dir : str, path-like or None
        This project's name for the folder; not together with `dataset`.
    download : bool
        Download the missing archive (md5-checked) from the Toronto site.
    rng : numpy.random.RandomState or None
        Source of the dequantisation noise; None uses ``np.random`` as the
        original did.

    Returns
    -------
    x_train, t_train, x_test, t_test
        float32 images (50000, 32, 32, 3) and (10000, 32, 32, 3), int64
        labels 0..9 (in general, as many rows as the archive holds).

    Example
    -------
    >>> x_train, t_train, x_test, t_test = load_cifar10(
    ...     normalize=True, dequantify=False)          # doctest: +SKIP
    """
    folder, path = _original_path(dataset, data_dir, 'load_cifar10')
    path = _ensure(path or os.path.join(folder, 'cifar-10-python.tar.gz'),
                   download)
    try:
        tar = tarfile.open(path)
    except (tarfile.TarError, OSError) as error:
        raise _corrupt(path, 'it is not a readable tar archive (%s)' % error,
                       DOWNLOAD_URLS['cifar-10-python.tar.gz']) from error
    with tar:
        batches = [_unpickle(_tar_member(tar, 'cifar-10-batches-py/' + name,
                                         path), path)
                   for name in ['data_batch_%d' % i for i in range(1, 6)] +
                   ['test_batch']]
    images, labels = [], []
    for batch in batches:
        data = np.asarray(batch.get('data'))
        if data.ndim != 2 or data.shape[1] != 3072 or \
                len(batch.get('labels', ())) != len(data):
            raise _corrupt(path, 'a batch holds data of shape %s and %d '
                           'labels, expected (N, 3072) and N'
                           % (data.shape, len(batch.get('labels', ()))))
        images.append(data)
        labels.append(np.asarray(batch['labels'], dtype=np.int64))
    x_train, x_test = _dequantize_and_scale(
        [np.concatenate(images[:5]), images[5]], dequantify, normalize, rng)
    as_nhwc = lambda x: x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return (as_nhwc(x_train), np.concatenate(labels[:5]), as_nhwc(x_test),
            labels[5])


def _svhn_split(path, download):
    mat = _loadmat(_ensure(path, download))
    if 'X' not in mat or 'y' not in mat or mat['X'].ndim != 4 or \
            mat['X'].shape[:3] != (32, 32, 3) or \
            mat['y'].size != mat['X'].shape[3]:
        raise _corrupt(path, 'expected X of shape (32, 32, 3, N) and N '
                       'labels y', DOWNLOAD_URLS.get(os.path.basename(path)))
    # The original's labels: y - 1, so digits 1..9 are 0..8 and the
    # digit 0 (stored as 10) is 9.
    return mat['X'].transpose(3, 0, 1, 2), \
        mat['y'].reshape(-1).astype(np.int32) - 1


def load_svhn(dataset=None, normalize=True, dequantify=True, extra=False,
              data_dir=None, download=True, rng=None):
    """Load the Street View House Numbers (Netzer et al. 2011), 32x32.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: the folder holding
        ``train_32x32.mat`` and ``test_32x32.mat`` (and
        ``extra_32x32.mat``). By default :func:`get_data_dir`.
    normalize, dequantify : bool
        As :func:`load_cifar10`.
    extra : bool
        Append the 531131 "extra" images to the training set.
    data_dir, download, rng
        As :func:`load_cifar10` (files from ufldl.stanford.edu, md5-checked).

    Returns
    -------
    x_train, t_train, x_test, t_test
        float32 images (N, 32, 32, 3); int32 labels y - 1 as in the original
        (digits 1..9 are 0..8, the digit 0 is 9).

    Example
    -------
    >>> x_train, t_train, x_test, t_test = load_svhn()  # doctest: +SKIP
    """
    folder, _ = _original_path(dataset, data_dir, 'load_svhn',
                               is_folder=True)
    x_train, t_train = _svhn_split(os.path.join(folder, 'train_32x32.mat'),
                                   download)
    x_test, t_test = _svhn_split(os.path.join(folder, 'test_32x32.mat'),
                                 download)
    if extra:
        x_extra, t_extra = _svhn_split(
            os.path.join(folder, 'extra_32x32.mat'), download)
        x_train = np.concatenate([x_train, x_extra])
        t_train = np.concatenate([t_train, t_extra])
    x_train, x_test = _dequantize_and_scale([x_train, x_test], dequantify,
                                            normalize, rng)
    return x_train, t_train, x_test, t_test


_STL10_FILES = ('train_X.bin', 'train_y.bin', 'test_X.bin', 'test_y.bin',
                'unlabeled_X.bin')
_STL10_IMAGE_BYTES = 3 * 96 * 96


def load_stl10(dataset=None, normalize=False, dequantify=False,
               data_dir=None, download=True):
    """Load STL-10 (Coates et al. 2011): 96x96 colour images, as uint8.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: the path of
        ``stl10_binary.tar.gz`` or a folder holding it; a folder
        ``stl10_binary`` beside it (the extracted archive) is read instead
        when present. By default :func:`get_data_dir`.
    normalize, dequantify : False
        Not supported (the float32 copy would take 11 GB), as in the
        original: True raises ValueError.
    data_dir, download
        As :func:`load_cifar10` (md5-checked archive from Stanford).

    Returns
    -------
    x_train, t_train, x_test, t_test, x_unlabeled
        uint8 images (N, 3, 96, 96), upright; uint8 labels 0..9.

    Example
    -------
    >>> x_train, t_train, x_test, t_test, x_unlab = load_stl10(
    ...     )                                               # doctest: +SKIP
    """
    if normalize or dequantify:
        raise ValueError('load_stl10 returns uint8 images and supports '
                         'neither normalize nor dequantify (as the original '
                         'Parmesan); convert and scale batches as you use '
                         'them')
    folder, path = _original_path(dataset, data_dir, 'load_stl10')
    path = path or os.path.join(folder, 'stl10_binary.tar.gz')
    extracted = os.path.join(os.path.dirname(path), 'stl10_binary')
    if all(os.path.isfile(os.path.join(extracted, name))
           for name in _STL10_FILES):
        def read(name):
            with open(os.path.join(extracted, name), 'rb') as f:
                return f.read()
        source = extracted
        raw = {name: read(name) for name in _STL10_FILES}
    else:
        source = _ensure(path, download)
        try:
            with tarfile.open(source) as tar:
                raw = {name: _tar_member(tar, 'stl10_binary/' + name, source)
                       for name in _STL10_FILES}
        except (tarfile.TarError, OSError, EOFError) as error:
            raise _corrupt(source, 'it is not a readable tar archive (%s)'
                           % error, DOWNLOAD_URLS['stl10_binary.tar.gz']
                           ) from error

    def images(name):
        data = np.frombuffer(raw[name], np.uint8)
        if data.size % _STL10_IMAGE_BYTES:
            raise _corrupt(source, '%s holds %d bytes, not a whole number of '
                           '3x96x96 images' % (name, data.size))
        # Stored column-major per channel: transpose to upright images.
        return data.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)

    def labels(name, n_images):
        data = np.frombuffer(raw[name], np.uint8)
        if data.size != n_images or data.min() < 1 or data.max() > 10:
            raise _corrupt(source, '%s holds %d labels in %s..%s for %d '
                           'images; expected labels 1..10'
                           % (name, data.size, data.min(), data.max(),
                              n_images))
        return data - np.uint8(1)

    x_train, x_test = images('train_X.bin'), images('test_X.bin')
    return (x_train, labels('train_y.bin', len(x_train)), x_test,
            labels('test_y.bin', len(x_test)), images('unlabeled_X.bin'))


# --- small NORB, Frey faces, LFW, Omniglot -----------------------------------

_NORB_TYPES = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32}
_NORB_FILES = {
    'train': ('smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz',
              'smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat.gz'),
    'test': ('smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat.gz',
             'smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat.gz')}


def _parse_norb(data, path):
    """Array from LeCun's binary matrix format (little-endian: magic, ndim,
    max(3, ndim) sizes, values)."""
    if len(data) < 20:
        raise _corrupt(path, 'it is shorter than its header')
    magic, ndim = struct.unpack('<ii', data[:8])
    if magic not in _NORB_TYPES or not 1 <= ndim <= 8:
        raise _corrupt(path, 'its header (magic 0x%08x, %d dimensions) is '
                       'not that of a NORB byte or int matrix'
                       % (magic & 0xFFFFFFFF, ndim))
    stored = max(3, ndim)
    shape = struct.unpack('<%di' % stored, data[8:8 + 4 * stored])[:ndim]
    dtype = np.dtype(_NORB_TYPES[magic]).newbyteorder('<')
    offset = 8 + 4 * stored
    if len(data) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise _corrupt(path, 'its header announces shape %s, it holds %d '
                       'bytes of values' % (shape, len(data) - offset))
    return np.frombuffer(data, dtype, offset=offset).reshape(shape)


def _norb_split(folder, split, download):
    paths = []
    for name in _NORB_FILES[split]:
        # Also the uncompressed files, as many copies are kept.
        plain = os.path.join(folder, name[:-len('.gz')])
        paths.append(plain if os.path.isfile(plain) else
                     _ensure(os.path.join(folder, name), download))
    images_path, labels_path = paths
    images = _parse_norb(_read_verified(images_path), images_path)
    labels = _parse_norb(_read_verified(labels_path), labels_path)
    if images.ndim != 4 or images.shape[1:] != (2, 96, 96) or \
            labels.shape != images.shape[:1]:
        raise _corrupt(images_path, 'images of shape %s and labels of shape '
                       '%s; expected (N, 2, 96, 96) and (N,)'
                       % (images.shape, labels.shape))
    # 32x32 by averaging 3x3 blocks; both cameras, one after the other.
    small = images.reshape(-1, 2, 32, 3, 32, 3).mean(axis=(3, 5))
    x = np.concatenate([small[:, 0], small[:, 1]]).reshape(-1, 1024)
    return x, np.concatenate([labels, labels]).astype(np.float32)


def load_norb_small(dataset=None, dequantify=True, normalize=True,
                    data_dir=None, download=True, rng=None):
    """Load small NORB (LeCun et al. 2004) at 32x32, both cameras.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: its cached
        ``norbsmall32x32.cpkl``, read as the original did; or a folder
        holding the four official files
        ``smallnorb-5x{46789,01235}x9x18x6x2x96x96-{training,testing}-
        {dat,cat}.mat.gz`` from NYU. By default :func:`get_data_dir`.
    dequantify, normalize : bool
        As :func:`load_cifar10`.
    data_dir, download, rng
        As :func:`load_cifar10`.

    Returns
    -------
    x_train, t_train, x_test, t_test
        float32 images (2 x 24300, 1024), row-major 32x32, the left
        camera's images followed by the right camera's; float32 labels
        0..4.

    Notes
    -----
    The original downsampled with MATLAB's bicubic resize (files no longer
    online) and took the left camera twice, so each image appeared twice;
    here 3x3 blocks are averaged and the right camera's images are the
    second half.

    Example
    -------
    >>> x_train, t_train, x_test, t_test = load_norb_small()  # doctest: +SKIP
    """
    folder, path = _original_path(dataset, data_dir, 'load_norb_small')
    if path is not None:
        x_train, t_train, x_test, t_test = _load_pickle(
            path, 'train_x, train_t, test_x, test_t', 4)
    else:
        x_train, t_train = _norb_split(folder, 'train', download)
        x_test, t_test = _norb_split(folder, 'test', download)
    x_train, x_test = _dequantize_and_scale([x_train, x_test], dequantify,
                                            normalize, rng)
    return (x_train, np.asarray(t_train, np.float32), x_test,
            np.asarray(t_test, np.float32))


def load_frey_faces(dataset=None, normalize=True, dequantify=True,
                    data_dir=None, download=True, rng=None):
    """Load the Frey faces: 1965 grey images of 28x20 pixels.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: the stem of its cached pickle
        (``<dataset>.pkl.gz``), or a folder holding Roweis's
        ``frey_rawface.mat``. By default :func:`get_data_dir`.
    normalize, dequantify : bool
        As :func:`load_cifar10`.
    data_dir, download, rng
        As :func:`load_cifar10`.

    Returns
    -------
    float32 array (1965, 28, 20).

    Example
    -------
    >>> faces = load_frey_faces(dequantify=False)         # doctest: +SKIP
    """
    folder, path = _original_path(dataset, data_dir, 'load_frey_faces')
    raw = os.path.join(folder, 'frey_rawface.mat')
    if path is not None:
        stem = path[:-len('.pkl.gz')] if path.endswith('.pkl.gz') else path
        # The original cached the faces in <stem>.pkl.gz from the file it
        # downloaded as <stem>.mat.
        if os.path.isfile(stem + '.pkl.gz'):
            return _dequantize_and_scale(
                [np.asarray(_load_pickle(stem + '.pkl.gz', '[faces]', 1)[0]
                            ).reshape(-1, 28, 20)],
                dequantify, normalize, rng)[0]
        if os.path.isfile(path) or os.path.isfile(stem + '.mat'):
            raw = path if os.path.isfile(path) else stem + '.mat'
    path = _ensure(raw, download) if raw.endswith('frey_rawface.mat') \
        else raw
    mat = _loadmat(path)
    if 'ff' not in mat or mat['ff'].shape[0] != 28 * 20:
        raise _corrupt(path, 'expected a variable ff of shape (560, N)',
                       DOWNLOAD_URLS['frey_rawface.mat'])
    faces = mat['ff'].T
    return _dequantize_and_scale([faces.reshape(-1, 28, 20)], dequantify,
                                 normalize, rng)[0]


def load_lfw(dataset=None, normalize=True, dequantify=True, size=0.25,
             data_dir=None, download=True, rng=None):
    """Load Labeled Faces in the Wild in colour, through scikit-learn.

    Needs scikit-learn (``sklearn.datasets.fetch_lfw_people``), which
    Parmesan does not install.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: the stem of its cached pickle
        (``<dataset>_<size>.cpkl``, size with two decimals), or a folder
        used as scikit-learn's ``data_home``. By default
        :func:`get_data_dir`.
    normalize, dequantify : bool
        As :func:`load_cifar10`.
    size : float
        Resize factor of the 250x250 images (0.25 gives 62x47).
    data_dir, download, rng
        As :func:`load_cifar10`; `download` lets scikit-learn download.

    Returns
    -------
    float32 images (N, height, width, 3), from 8-bit pixels as in the
    original.

    Example
    -------
    >>> faces = load_lfw(size=0.25)                      # doctest: +SKIP
    """
    folder, path = _original_path(dataset, data_dir, 'load_lfw')
    cached = None if path is None else (
        path if os.path.isfile(path) else '%s_%0.2f.cpkl' % (path, size))
    if cached is not None and os.path.isfile(cached):
        images = np.asarray(_load_pickle(cached, '[images, targets]', 2)[0])
    else:
        sklearn_datasets = _optional_import('sklearn.datasets', 'load_lfw',
                                            'scikit-learn')
        try:
            people = sklearn_datasets.fetch_lfw_people(
                data_home=folder, color=True, resize=size,
                download_if_missing=download)
        except (IOError, OSError) as error:
            raise DatasetError('LFW could not be loaded into %s by '
                               'scikit-learn (%s). Pass download=True, or '
                               'set %s or data_dir to a folder holding '
                               'scikit-learn\'s lfw_home.'
                               % (folder, error, DATA_DIR_ENV)) from error
        images = np.asarray(people.images)
        if images.size and images.max() <= 1.0:
            images = images * 255  # newer scikit-learn scales to [0, 1]
        images = images.astype(np.uint8)
    return _dequantize_and_scale([images], dequantify, normalize, rng)[0]


_OMNIGLOT_TEST_DRAWERS = tuple('%d.png' % drawer for drawer in range(16, 21))


def _omniglot_zip_images(path, download):
    """(train, test) lists of 32x32 images of one Omniglot zip."""
    from PIL import Image
    path = _ensure(path, download)
    train, test = [], []
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if not name.endswith('.png'):
                    continue
                with archive.open(name) as f:
                    image = Image.open(f).convert('L').resize(
                        (32, 32), Image.BICUBIC)
                inked = np.abs(np.asarray(image, np.float64) - 255.) / 255.
                (test if name.endswith(_OMNIGLOT_TEST_DRAWERS) else
                 train).append(inked.reshape(-1))
    except (zipfile.BadZipFile, OSError) as error:
        raise _corrupt(path, 'it is not a readable zip of PNG images (%s)'
                       % error, DOWNLOAD_URLS.get(os.path.basename(path))
                       ) from error
    return train, test


def load_omniglot(dataset=None, data_dir=None, download=True):
    """Load Omniglot (Lake et al. 2015) at 32x32, split by drawer.

    Every PNG of ``images_background.zip`` and ``images_evaluation.zip``
    (brendenlake/omniglot) is resized to 32x32 (bicubic) and inverted so
    that ink is 1; drawers 16..20 of each character form the test set, the
    others the training set, as in the original Parmesan.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: a folder holding the two zips or
        the original's cache ``omniglot.cpkl`` (read as the original did).
        By default :func:`get_data_dir`.
    data_dir, download
        As :func:`load_cifar10`; needs Pillow (installed with matplotlib).

    Returns
    -------
    x_train, x_test : float32 arrays (N, 1024) in [0, 1], in the zips'
    sorted file order (the original's followed the file system's).

    Example
    -------
    >>> x_train, x_test = load_omniglot()                # doctest: +SKIP
    """
    folder, path = _original_path(dataset, data_dir, 'load_omniglot',
                                  is_folder=True)
    cache = path or os.path.join(folder, 'omniglot.cpkl')
    if os.path.isfile(cache):
        train, test = _load_pickle(cache, 'train, test', 2)
    else:
        train, test = [], []
        for name in ('images_background.zip', 'images_evaluation.zip'):
            more_train, more_test = _omniglot_zip_images(
                os.path.join(folder, name), download)
            train += more_train
            test += more_test
    return (np.asarray(train, np.float32).reshape(-1, 1024),
            np.asarray(test, np.float32).reshape(-1, 1024))


# --- text: 20 newsgroups, RCV1, rotten tomatoes ------------------------------

def _bag_of_words(train_texts, test_texts, max_features):
    """Word counts over the `max_features` most frequent stems of the
    training texts, as the original Parmesan counted them (punctuation
    removed, lower case, Porter stem, WordNet lemma, English stop words);
    here the test texts are stemmed too (the original did not)."""
    import re
    import string
    text = _optional_import('sklearn.feature_extraction.text',
                            'load_20newsgroup', 'scikit-learn')
    stem = _optional_import('nltk.stem', 'load_20newsgroup', 'nltk')
    tokenize = _optional_import('nltk.tokenize', 'load_20newsgroup', 'nltk')
    stemmer, lemmatizer = stem.PorterStemmer(), stem.WordNetLemmatizer()
    punctuation = re.compile('[%s]' % re.escape(string.punctuation))

    def normalise(document):
        tokens = tokenize.wordpunct_tokenize(punctuation.sub('', document))
        return ' '.join(lemmatizer.lemmatize(stemmer.stem(token.lower()))
                        for token in tokens)

    try:
        train_texts = [normalise(d) for d in train_texts]
        test_texts = [normalise(d) for d in test_texts]
    except LookupError as error:
        raise ImportError('load_20newsgroup needs nltk\'s WordNet data: '
                          'python -m nltk.downloader wordnet (%s)' % error
                          ) from error
    settings = dict(strip_accents='ascii', stop_words='english',
                    token_pattern=r"(?u)\b\w[a-z]\w+[a-z]\b",
                    dtype=np.float32)
    vectorizer = text.CountVectorizer(max_features=max_features, **settings)
    x_train = vectorizer.fit_transform(train_texts).toarray()
    vocabulary = list(vectorizer.get_feature_names_out())
    x_test = text.CountVectorizer(vocabulary=vocabulary, **settings
                                  ).fit_transform(test_texts).toarray()
    return x_train, x_test, vocabulary


def _drop_empty_and_scale(x, y, normalize_by_doc_len):
    """Rows of (x, y) with at least one word; rows of x scaled to sum 1."""
    totals = np.asarray(x.sum(axis=1)).ravel()
    keep = totals > 0
    x, y = x[keep], y[keep]
    if normalize_by_doc_len:
        scale = 1. / totals[keep]
        if hasattr(x, 'multiply'):
            x = x.multiply(scale[:, None]).tocsr()
        else:
            x = x * scale[:, None]
    return x.astype(np.float32), y.astype(np.float32)


def load_20newsgroup(dataset=None, max_feat=1000, normalize_by_doc_len=True,
                     data_dir=None, download=True):
    """Load 20 newsgroups as bags of words (headers, footers and quotes
    removed), through scikit-learn and nltk.

    Needs scikit-learn and nltk (with its WordNet data), which Parmesan
    does not install.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: a folder; its cache
        ``20newsgroup_mf<max_feat>.pkl`` there is read as the original did,
        else the folder is scikit-learn's ``data_home``. By default
        :func:`get_data_dir`.
    max_feat : int
        Vocabulary size: the most frequent stems of the training set.
    normalize_by_doc_len : bool
        Divide every document's counts by its number of words.
    data_dir, download
        As :func:`load_cifar10`; `download` lets scikit-learn download.

    Returns
    -------
    x_train, y_train, x_test, y_test
        float32 arrays: counts (or frequencies) (N, max_feat) of the
        documents with at least one vocabulary word, and labels 0..19.

    Example
    -------
    >>> x_train, y_train, x_test, y_test = load_20newsgroup(
    ...     max_feat=2000)                                  # doctest: +SKIP
    """
    folder, path = _original_path(dataset, data_dir, 'load_20newsgroup',
                                  is_folder=True)
    cache = path or os.path.join(folder, '20newsgroup_mf%d.pkl' % max_feat)
    if os.path.isfile(cache):
        (x_train, y_train), (x_test, y_test), _ = _load_pickle(
            cache, '(x_train, y_train), (x_test, y_test), vocabulary', 3)
        x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    else:
        sklearn_datasets = _optional_import(
            'sklearn.datasets', 'load_20newsgroup', 'scikit-learn')
        splits = []
        for subset in ('train', 'test'):
            try:
                splits.append(sklearn_datasets.fetch_20newsgroups(
                    data_home=folder, subset=subset,
                    remove=('headers', 'footers', 'quotes'),
                    download_if_missing=download))
            except (IOError, OSError) as error:
                raise DatasetError('20 newsgroups could not be loaded into '
                                   '%s by scikit-learn (%s)'
                                   % (folder, error)) from error
        x_train, x_test, _ = _bag_of_words(splits[0].data, splits[1].data,
                                           max_feat)
        y_train, y_test = splits[0].target, splits[1].target
    x_train, y_train = _drop_empty_and_scale(x_train, np.asarray(y_train),
                                             normalize_by_doc_len)
    x_test, y_test = _drop_empty_and_scale(x_test, np.asarray(y_test),
                                           normalize_by_doc_len)
    return x_train, y_train, x_test, y_test


def load_rcv1(dataset=None, max_features=10000, normalize_by_doc_len=True,
              data_dir=None, download=True):
    """Load RCV1 (Lewis et al. 2004) through scikit-learn, as sparse bags
    of its `max_features` most frequent words.

    scikit-learn's RCV1 is already a (log TF-IDF) document-term matrix of
    47236 stems; the original Parmesan sent it through its text pipeline,
    which cannot take a matrix. Here the columns with the most documents in
    the training set are kept. Needs scikit-learn, which Parmesan does not
    install.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: a folder, used as scikit-learn's
        ``data_home``. By default :func:`get_data_dir`.
    max_features : int
    normalize_by_doc_len : bool
        Scale every document's row to sum 1.
    data_dir, download
        As :func:`load_20newsgroup`.

    Returns
    -------
    x_train, y_train, x_test, y_test
        float32 ``scipy.sparse`` CSR matrices (the dense test set would
        take 31 GB): documents with at least one kept word, and their
        103 topic indicators.

    Example
    -------
    >>> x_train, y_train, x_test, y_test = load_rcv1()     # doctest: +SKIP
    """
    folder, _ = _original_path(dataset, data_dir, 'load_rcv1',
                               is_folder=True)
    sklearn_datasets = _optional_import('sklearn.datasets', 'load_rcv1',
                                        'scikit-learn')
    splits = []
    for subset in ('train', 'test'):
        try:
            splits.append(sklearn_datasets.fetch_rcv1(
                data_home=folder, subset=subset,
                download_if_missing=download))
        except (IOError, OSError) as error:
            raise DatasetError('RCV1 could not be loaded into %s by '
                               'scikit-learn (%s)' % (folder, error)
                               ) from error
    import scipy.sparse
    train, test = (scipy.sparse.csr_matrix(split.data) for split in splits)
    documents_per_word = np.asarray((train != 0).sum(axis=0)).ravel()
    # Most documents first; ties in column order.
    kept = np.sort(np.argsort(-documents_per_word, kind='stable')
                   [:max_features])
    result = []
    for x, split in ((train, splits[0]), (test, splits[1])):
        result += _drop_empty_and_scale(
            x[:, kept], scipy.sparse.csr_matrix(split.target),
            normalize_by_doc_len)
    return tuple(result)


def _review_lines(tar, name, path):
    lines = _tar_member(tar, 'rt-polaritydata/' + name, path).decode(
        'latin-1').split('\n')
    return [line.rstrip(' ').lower() for line in lines if line.strip()]


def load_rotten_tomatoes(dataset=None, vocab_size=40, minimum_len=None,
                         maximum_len=None, seed=1234, data_dir=None,
                         download=True):
    """Load the rotten tomatoes sentence polarity data (Pang and Lee 2005)
    as character sequences.

    Parameters
    ----------
    dataset : str, path-like or None
        The original Parmesan's argument: a folder holding
        ``rt-polaritydata.tar.gz``. By default :func:`get_data_dir`.
    vocab_size : int or str
        An int keeps the most frequent characters (then sorted); a string
        is the vocabulary itself. Other characters map to
        ``len(vocabulary)``.
    minimum_len, maximum_len : int or None
        Keep only reviews of at least / at most this many characters.
    seed : int
        Seed of the shuffle (``np.random.RandomState(seed).permutation``,
        the permutation the original drew after ``np.random.seed(seed)``).
    data_dir, download
        As :func:`load_cifar10`.

    Returns
    -------
    X, y, mask, vocab
        int32 (N, longest review) character indices padded with 0, int32
        labels (1 positive, 0 negative), float32 mask of real characters,
        and the list of vocabulary characters.

    Example
    -------
    >>> X, y, mask, vocab = load_rotten_tomatoes()       # doctest: +SKIP
    """
    from collections import Counter
    folder, path = _original_path(dataset, data_dir, 'load_rotten_tomatoes',
                                  is_folder=True)
    path = _ensure(path or os.path.join(folder, 'rt-polaritydata.tar.gz'),
                   download)
    try:
        with tarfile.open(path) as tar:
            positive = _review_lines(tar, 'rt-polarity.pos', path)
            negative = _review_lines(tar, 'rt-polarity.neg', path)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise _corrupt(path, 'it is not a readable tar archive (%s)' % error,
                       DOWNLOAD_URLS['rt-polaritydata.tar.gz']) from error
    reviews = positive + negative
    if isinstance(vocab_size, str):
        vocab = list(vocab_size)
    else:
        counts = Counter(''.join(reviews)).most_common(vocab_size)
        vocab = sorted(char for char, _ in counts)
    index = {char: i for i, char in enumerate(vocab)}
    unknown = len(vocab)
    longest = max(len(review) for review in reviews)
    X = np.zeros((len(reviews), longest), np.int32)
    mask = np.zeros((len(reviews), longest), np.float32)
    for row, review in enumerate(reviews):
        X[row, :len(review)] = [index.get(char, unknown) for char in review]
        mask[row, :len(review)] = 1
    y = np.array([1] * len(positive) + [0] * len(negative), np.int32)
    lengths = mask.sum(axis=1)
    keep = np.ones(len(reviews), bool)
    if minimum_len is not None:
        keep &= lengths >= minimum_len
    if maximum_len is not None:
        keep &= lengths <= maximum_len
    X, y, mask = X[keep], y[keep], mask[keep]
    order = np.random.RandomState(seed).permutation(len(X))
    return X[order], y[order], mask[order], vocab
