"""Tests of parmesan.datasets against the real files and independent readers.

The real data is looked up in $PARMESAN_DATA, else in ``../shared/data``
beside the repository; tests needing it are skipped when it is absent. No
test touches the network: downloads are exercised with a fake ``urlopen``.
"""
import gzip
import io
import itertools
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import scipy.io

from parmesan import datasets
from parmesan.datasets import (DatasetError, binarize, get_data_dir,
                               load_cifar10, load_frey_faces, load_lfw,
                               load_mnist_binarized, load_mnist_dynamic,
                               load_mnist_realval, load_norb_small,
                               load_omniglot, load_omniglot_iwae, load_rcv1,
                               load_rotten_tomatoes, load_stl10, load_svhn,
                               load_20newsgroup, select_balanced_labels)

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_DATA = os.path.abspath(
    os.environ.get('PARMESAN_DATA') or
    os.path.join(HERE, os.pardir, os.pardir, 'shared', 'data'))

MNIST_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
               't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
BINARIZED_FILES = tuple('binarized_mnist_%s.amat.gz' % split
                        for split in ('train', 'valid', 'test'))

# Published in the shared data README.
TRAIN_COUNTS_60K = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                    5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _have(names):
    return all(os.path.isfile(os.path.join(SHARED_DATA, name))
               for name in names)


requires_mnist = pytest.mark.skipif(
    not _have(MNIST_FILES),
    reason="MNIST IDX files not found in %s; set PARMESAN_DATA or put "
           "shared/data beside the repository" % SHARED_DATA)
requires_binarized = pytest.mark.skipif(
    not _have(BINARIZED_FILES),
    reason="binarized MNIST .amat.gz files not found in %s; set "
           "PARMESAN_DATA or put shared/data beside the repository"
           % SHARED_DATA)


def _read_idx_reference(name):
    """uint8 array of an IDX file, read without parmesan's parser."""
    with gzip.open(os.path.join(SHARED_DATA, name)) as f:
        data = f.read()
    header = 16 if 'images' in name else 8
    values = np.frombuffer(data, np.uint8, offset=header)
    return values.reshape(-1, 784) if 'images' in name else values


def _mirror(names, folder, replace=None):
    """Link the shared `names` into `folder`, writing `replace` as bytes."""
    replace = replace or {}
    os.makedirs(folder, exist_ok=True)
    for name in names:
        target = os.path.join(folder, name)
        if name in replace:
            with open(target, 'wb') as f:
                f.write(replace[name])
        else:
            os.symlink(os.path.join(SHARED_DATA, name), target)
    return str(folder)


def _shared_bytes(name):
    with open(os.path.join(SHARED_DATA, name), 'rb') as f:
        return f.read()


@pytest.fixture(scope='module')
def realval():
    return load_mnist_realval(SHARED_DATA, download=False)


@pytest.fixture(scope='module')
def binarized():
    return load_mnist_binarized(SHARED_DATA, download=False)


@pytest.fixture(scope='module')
def mnist_reference():
    return {name: _read_idx_reference(name) for name in MNIST_FILES}


# --- module hygiene --------------------------------------------------------

def test_module_imports_neither_theano_nor_lasagne():
    script = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('d', %r)\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted({'theano', 'lasagne'} & set(sys.modules)))\n"
        % datasets.__file__)
    output = subprocess.run([sys.executable, '-c', script], check=True,
                            capture_output=True, text=True).stdout
    assert output.strip() == '[]'


# --- data directory resolution ---------------------------------------------

def test_data_dir_argument_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('PARMESAN_DATA', str(tmp_path / 'from_env'))
    assert get_data_dir(tmp_path / 'given') == str(tmp_path / 'given')


def test_data_dir_environment_beats_default(monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('PARMESAN_DATA', str(tmp_path / 'from_env'))
    assert get_data_dir() == str(tmp_path / 'from_env')


def test_data_dir_default_is_expanded_at_call_time(monkeypatch, tmp_path):
    monkeypatch.delenv('PARMESAN_DATA', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert get_data_dir() == str(tmp_path / 'home' / '.parmesan' / 'data')
    monkeypatch.setenv('PARMESAN_DATA', '')
    assert get_data_dir() == str(tmp_path / 'home' / '.parmesan' / 'data')


def test_loaders_resolve_data_dir_in_order(monkeypatch, tmp_path):
    monkeypatch.setenv('PARMESAN_DATA', str(tmp_path / 'from_env'))
    with pytest.raises(DatasetError) as error:
        load_mnist_realval(download=False)
    assert str(tmp_path / 'from_env' / MNIST_FILES[0]) in str(error.value)
    with pytest.raises(DatasetError) as error:
        load_mnist_realval(tmp_path / 'given', download=False)
    assert str(tmp_path / 'given' / MNIST_FILES[0]) in str(error.value)


# --- missing files and downloads -------------------------------------------

def test_missing_mnist_file_names_path_url_and_remedy(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_mnist_realval(tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path / 'train-images-idx3-ubyte.gz') in message
    assert 'http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz' \
        in message
    assert 'PARMESAN_DATA' in message and 'data_dir=' in message
    assert '--data-dir' in message


def test_missing_binarized_file_names_path_and_url(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_mnist_binarized(tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path / 'binarized_mnist_train.amat') in message
    assert ('http://www.cs.toronto.edu/~larocheh/public/datasets/'
            'binarized_mnist/binarized_mnist_train.amat') in message


def _fake_urlopen(requested, payload_for_url):
    def urlopen(url, timeout=None):
        requested.append(url)
        payload = payload_for_url(url)
        if isinstance(payload, Exception):
            raise payload
        return io.BytesIO(payload)
    return urlopen


@requires_mnist
def test_download_fetches_missing_files_into_data_dir(monkeypatch, tmp_path,
                                                      realval):
    requested = []
    monkeypatch.setattr(urllib.request, 'urlopen', _fake_urlopen(
        requested, lambda url: _shared_bytes(url.rsplit('/', 1)[1])))
    target = tmp_path / 'new' / 'folder'
    loaded = load_mnist_realval(target)
    assert requested == ['http://yann.lecun.com/exdb/mnist/' + name
                         for name in MNIST_FILES]
    assert sorted(os.listdir(target)) == sorted(MNIST_FILES)
    for got, expected in zip(loaded, realval):
        np.testing.assert_array_equal(got, expected)


def test_failed_download_raises_and_leaves_no_file(monkeypatch, tmp_path):
    monkeypatch.setattr(urllib.request, 'urlopen', _fake_urlopen(
        [], lambda url: urllib.error.URLError('no network here')))
    with pytest.raises(DatasetError) as error:
        load_mnist_realval(tmp_path)
    message = str(error.value)
    assert str(tmp_path / MNIST_FILES[0]) in message
    assert 'http://yann.lecun.com/exdb/mnist/' + MNIST_FILES[0] in message
    assert 'no network here' in message
    assert os.listdir(tmp_path) == []


def test_failed_download_leaves_no_empty_data_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(urllib.request, 'urlopen', _fake_urlopen(
        [], lambda url: urllib.error.URLError('no network here')))
    home_like = tmp_path / 'home'
    home_like.mkdir()
    with pytest.raises(DatasetError, match='--data-dir'):
        load_mnist_realval(str(home_like / '.parmesan' / 'data'))
    assert os.listdir(home_like) == []


def test_interrupted_download_leaves_no_partial_file(monkeypatch, tmp_path):
    class BrokenStream(io.BytesIO):
        def read(self, *args):
            raise ConnectionResetError('connection reset')

    monkeypatch.setattr(urllib.request, 'urlopen',
                        lambda url, timeout=None: BrokenStream())
    with pytest.raises(DatasetError, match='connection reset'):
        load_mnist_binarized(tmp_path)
    assert os.listdir(tmp_path) == []


def test_download_with_wrong_checksum_is_discarded(monkeypatch, tmp_path):
    monkeypatch.setattr(urllib.request, 'urlopen', _fake_urlopen(
        [], lambda url: b'<html>not the file</html>'))
    with pytest.raises(DatasetError, match='md5'):
        load_mnist_realval(tmp_path)
    assert os.listdir(tmp_path) == []


# --- corrupt files -----------------------------------------------------------

def _flip_one_byte(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


@requires_mnist
def test_flipped_byte_fails_checksum_naming_the_file(tmp_path):
    name = 't10k-labels-idx1-ubyte.gz'
    folder = _mirror(MNIST_FILES, tmp_path, {
        name: _flip_one_byte(_shared_bytes(name))})
    with pytest.raises(DatasetError) as error:
        load_mnist_realval(folder, download=False)
    message = str(error.value)
    assert os.path.join(folder, name) in message
    assert 'md5' in message and 'Delete it' in message


@requires_mnist
@pytest.mark.parametrize('check_md5', [True, False])
def test_truncated_gzip_raises_dataset_error(monkeypatch, tmp_path,
                                             check_md5):
    name = 't10k-labels-idx1-ubyte.gz'
    if not check_md5:
        # Without the md5 the damage must be caught while decompressing.
        monkeypatch.delitem(datasets.KNOWN_MD5, name)
    folder = _mirror(MNIST_FILES, tmp_path, {name: _shared_bytes(name)[:-40]})
    with pytest.raises(DatasetError) as error:
        load_mnist_realval(folder, download=False)
    assert type(error.value) is DatasetError
    assert os.path.join(folder, name) in str(error.value)
    assert ('md5' if check_md5 else 'decompress') in str(error.value)


def _gzip(data):
    return gzip.compress(data, mtime=0)


@requires_mnist
@pytest.mark.parametrize('magic, count, labels, complaint', [
    (0x803, 10000, bytes(10000), 'magic'),
    (0x801, 9999, bytes(9999), 'shape'),
    (0x801, 10000, bytes(9000), 'bytes'),
    (0x801, 10000, bytes([10] * 10000), 'label'),
], ids=['magic', 'count', 'length', 'label'])
def test_malformed_idx_raises_dataset_error(monkeypatch, tmp_path, magic,
                                            count, labels, complaint):
    name = 't10k-labels-idx1-ubyte.gz'
    content = magic.to_bytes(4, 'big') + count.to_bytes(4, 'big') + labels
    monkeypatch.delitem(datasets.KNOWN_MD5, name)
    folder = _mirror(MNIST_FILES, tmp_path, {name: _gzip(content)})
    with pytest.raises(DatasetError, match=complaint) as error:
        load_mnist_realval(folder, download=False)
    assert os.path.join(folder, name) in str(error.value)


@requires_mnist
def test_checksum_is_verified_once_per_file_version(monkeypatch, tmp_path):
    hashed = []
    file_md5 = datasets._file_md5
    monkeypatch.setattr(datasets, '_verified_files', set())
    monkeypatch.setattr(datasets, '_file_md5',
                        lambda path: hashed.append(path) or file_md5(path))
    name = 't10k-labels-idx1-ubyte.gz'
    folder = _mirror(MNIST_FILES, tmp_path, {name: _shared_bytes(name)})
    load_mnist_realval(folder, download=False)
    assert len(hashed) == 4
    load_mnist_realval(folder, download=False)
    assert len(hashed) == 4
    os.utime(os.path.join(folder, name), ns=(0, 0))
    load_mnist_realval(folder, download=False)
    assert hashed[4:] == [os.path.join(folder, name)]


# --- grey-level MNIST --------------------------------------------------------

@requires_mnist
def test_realval_shapes_dtypes_and_range(realval):
    x_train, t_train, x_valid, t_valid, x_test, t_test = realval
    for x, n in ((x_train, 50000), (x_valid, 10000), (x_test, 10000)):
        assert x.shape == (n, 784) and x.dtype == np.float32
        # /255, not /256: full ink is exactly 1.
        assert x.min() == 0 and x.max() == 1
    for t, n in ((t_train, 50000), (t_valid, 10000), (t_test, 10000)):
        assert t.shape == (n,) and t.dtype == np.int32


@requires_mnist
def test_realval_split_matches_idx_files(realval, mnist_reference):
    x_train, t_train, x_valid, t_valid, x_test, t_test = realval
    images = mnist_reference['train-images-idx3-ubyte.gz']
    labels = mnist_reference['train-labels-idx1-ubyte.gz']
    test_images = mnist_reference['t10k-images-idx3-ubyte.gz']
    for x, grey in ((x_train, images[:50000]), (x_valid, images[50000:]),
                    (x_test, test_images)):
        np.testing.assert_array_equal(np.rint(x * 255), grey)
        rows = np.random.RandomState(0).choice(len(x), 200, replace=False)
        np.testing.assert_allclose(x[rows], grey[rows] / 255.0, rtol=0,
                                   atol=1e-7)
    np.testing.assert_array_equal(t_train, labels[:50000])
    np.testing.assert_array_equal(t_valid, labels[50000:])
    np.testing.assert_array_equal(
        t_test, mnist_reference['t10k-labels-idx1-ubyte.gz'])


@requires_mnist
def test_realval_statistics_match_readme(realval):
    x_train, t_train, x_valid, t_valid, x_test, t_test = realval
    x_full = np.concatenate([x_train, x_valid]).astype(np.float64)
    assert abs(x_full.mean() - 0.1307) < 5e-4
    assert abs(x_full.std() - 0.3081) < 5e-4
    assert abs(x_test.mean(dtype=np.float64) - 0.1325) < 5e-4
    t_full = np.concatenate([t_train, t_valid])
    assert np.bincount(t_full).tolist() == TRAIN_COUNTS_60K
    assert np.bincount(t_test).tolist() == TEST_COUNTS


# --- fixed binarisation -----------------------------------------------------

@requires_binarized
def test_binarized_shapes_values_and_means(binarized):
    for x, n, mean in zip(binarized, (50000, 10000, 10000),
                          (0.1306, 0.1311, 0.1325)):
        assert x.shape == (n, 784) and x.dtype == np.float32
        assert np.all((x == 0) | (x == 1))
        assert abs(x.mean(dtype=np.float64) - mean) < 5e-5


@requires_binarized
def test_binarized_parser_equals_loadtxt(binarized):
    path = os.path.join(SHARED_DATA, 'binarized_mnist_train.amat.gz')
    with gzip.open(path, 'rt') as f:
        reference = np.loadtxt(itertools.islice(f, 200))
    np.testing.assert_array_equal(binarized[0][:200], reference)


@requires_binarized
@requires_mnist
def test_binarized_test_set_is_mnist_test_sorted_by_class(binarized,
                                                          mnist_reference):
    grey = mnist_reference['t10k-images-idx3-ubyte.gz']
    labels = mnist_reference['t10k-labels-idx1-ubyte.gz']
    x_test = binarized[2]
    grey_sorted = grey[np.argsort(labels, kind='stable')]
    rows = np.random.RandomState(0).choice(len(x_test), 500, replace=False)
    assert not np.any((x_test[rows] == 1) & (grey_sorted[rows] == 0))
    assert not np.any((x_test[rows] == 0) & (grey_sorted[rows] == 255))
    # In the file's own order the rows do not match: it is reordered.
    assert np.any((x_test[rows] == 1) & (grey[rows] == 0))


@requires_binarized
def test_uncompressed_amat_is_accepted(tmp_path, binarized):
    folder = _mirror(BINARIZED_FILES[:2], tmp_path)
    with gzip.open(os.path.join(SHARED_DATA, BINARIZED_FILES[2])) as f:
        (tmp_path / 'binarized_mnist_test.amat').write_bytes(f.read())
    x_test = load_mnist_binarized(folder, download=False)[2]
    np.testing.assert_array_equal(x_test, binarized[2])


def _amat(rows, separator=' ', line_end='\n'):
    return ''.join(separator.join(str(int(v)) for v in row) + line_end
                   for row in rows).encode()


def test_amat_parser_accepts_other_whitespace():
    rows = np.random.RandomState(0).binomial(1, 0.3, (3, 784))
    for text in (_amat(rows), _amat(rows, line_end=' \r\n'),
                 _amat(rows, separator='\t') + b'\n\n',
                 _amat(rows, line_end='\n')[:-1]):
        parsed = datasets._parse_amat(text, 3, 'x.amat')
        assert parsed.dtype == np.float32
        np.testing.assert_array_equal(parsed, rows)


@pytest.mark.parametrize('damage, complaint', [
    (lambda text: text.replace(b'0', b'2', 1), 'byte'),
    (lambda text: text.replace(b'0 ', b'0', 1), 'single'),
    (lambda text: text.replace(b'0 ', b'', 1), 'lines of 784'),
    (lambda text: text[:text.rindex(b'\n', 0, -1) + 1], 'lines of 784'),
    (lambda text: b'', 'empty'),
])
def test_amat_parser_rejects_bad_layout(damage, complaint):
    rows = np.random.RandomState(0).binomial(1, 0.3, (3, 784))
    rows[0, :2] = 0
    with pytest.raises(DatasetError, match=complaint):
        datasets._parse_amat(damage(_amat(rows)), 3, '/data/x.amat')


# --- dynamic binarisation ----------------------------------------------------

@pytest.mark.parametrize('make_rng', [np.random.RandomState,
                                      np.random.default_rng])
def test_binarize_mean_approaches_probabilities(make_rng):
    probabilities = np.concatenate(
        [[0, 1], np.random.RandomState(0).uniform(size=98)])
    n_samples = 4000
    samples = binarize(np.tile(probabilities, (n_samples, 1)), make_rng(1))
    assert samples.dtype == np.float32
    assert set(np.unique(samples)) <= {0, 1}
    mean = samples.mean(axis=0)
    tolerance = 4 * np.sqrt(probabilities * (1 - probabilities) / n_samples)
    assert np.all(np.abs(mean - probabilities) <= tolerance)
    assert mean[0] == 0 and mean[1] == 1


def test_binarize_is_reproducible_with_the_same_seed():
    x = np.random.RandomState(0).uniform(size=(20, 784)).astype(np.float32)
    first = binarize(x, np.random.RandomState(5))
    assert first.shape == x.shape
    np.testing.assert_array_equal(first, binarize(x, np.random.RandomState(5)))
    assert not np.array_equal(first, binarize(x, np.random.RandomState(6)))


@requires_mnist
def test_dynamic_evaluation_sets_are_fixed(realval):
    first = load_mnist_dynamic(SHARED_DATA, download=False)
    second = load_mnist_dynamic(SHARED_DATA, download=False)
    for got, expected in zip(first, second):
        np.testing.assert_array_equal(got, expected)
    x_train, t_train, x_valid, t_valid, x_test, t_test = first
    np.testing.assert_array_equal(x_train, realval[0])
    np.testing.assert_array_equal(t_test, realval[5])
    np.testing.assert_array_equal(
        x_valid, binarize(realval[2], np.random.RandomState(1235)))
    np.testing.assert_array_equal(
        x_test, binarize(realval[4], np.random.RandomState(1234)))
    for binary, grey in ((x_valid, realval[2]), (x_test, realval[4])):
        assert binary.dtype == np.float32
        assert not np.any((binary == 1) & (grey == 0))
        assert abs(binary.mean() - grey.mean()) < 2e-3


# --- balanced label selection ----------------------------------------------

@requires_mnist
def test_select_balanced_labels_picks_n_per_class(realval):
    labels = realval[1]
    chosen = select_balanced_labels(labels, 10, seed=1)
    assert chosen.shape == (100,)
    assert np.all(np.diff(chosen) > 0)
    assert np.bincount(labels[chosen]).tolist() == [10] * 10
    np.testing.assert_array_equal(
        chosen, select_balanced_labels(labels, 10, seed=1))
    assert not np.array_equal(
        chosen, select_balanced_labels(labels, 10, seed=2))


def test_select_balanced_labels_rejects_small_classes():
    labels = np.repeat([0, 1, 3], [20, 20, 2])
    with pytest.raises(ValueError, match='class 3 has only 2'):
        select_balanced_labels(labels, 5, seed=0)


# --- Omniglot (IWAE) ---------------------------------------------------------

def _write_chardata(path, seed=0, n_train=30, n_test=12):
    """Write a small chardata.mat laid out like Burda et al.'s file.

    Returns the upright (row-major) images and labels the loader should
    give back.
    """
    rng = np.random.RandomState(seed)
    expected = {}
    contents = {}
    for prefix, n in (('', n_train), ('test', n_test)):
        images = rng.uniform(size=(n, 28, 28))
        # An asymmetric mark that a transposition would move.
        images[0] = 0
        images[0, 3, 20] = 1
        images[0, 10:25, 5] = 1
        alphabets = rng.randint(50, size=n)
        characters = rng.randint(1, 56, size=n)
        one_hot = np.zeros((50, n))
        one_hot[alphabets, np.arange(n)] = 1
        # MATLAB stores img(:), i.e. each image flattened column-major.
        contents[prefix + 'data'] = np.stack(
            [image.flatten(order='F') for image in images], axis=1)
        contents[prefix + 'target'] = one_hot
        contents[prefix + 'targetchar'] = characters[None, :].astype(float)
        expected[prefix] = (images.reshape(n, 784), alphabets,
                            characters - 1)
    scipy.io.savemat(str(path), contents)
    return contents, expected['']


def test_omniglot_images_come_out_upright(tmp_path):
    path = tmp_path / 'chardata.mat'
    contents, (images, alphabets, characters) = _write_chardata(path)
    x_train, t_train, char_train, x_test, t_test, char_test = \
        load_omniglot_iwae(path, download=False)
    assert x_train.shape == (30, 784) and x_test.shape == (12, 784)
    assert x_train.dtype == np.float32
    assert x_train[0].reshape(28, 28)[3, 20] == 1
    assert x_train[0].reshape(28, 28)[10:25, 5].tolist() == [1] * 15
    np.testing.assert_allclose(x_train, images, rtol=1e-6)
    # The reshape used by the IWAE code itself.
    iwae = contents['testdata'].T.reshape((-1, 28, 28)).reshape(
        (-1, 784), order='F')
    np.testing.assert_allclose(x_test, iwae, rtol=1e-6)
    assert t_train.dtype == np.int32 and char_train.dtype == np.int32
    np.testing.assert_array_equal(t_train, alphabets)
    np.testing.assert_array_equal(char_train, characters)
    assert t_test.shape == char_test.shape == (12,)


def test_omniglot_accepts_folder_and_data_dir(monkeypatch, tmp_path):
    _write_chardata(tmp_path / 'chardata.mat')
    from_folder = load_omniglot_iwae(tmp_path, download=False)
    monkeypatch.setenv('PARMESAN_DATA', str(tmp_path))
    from_env = load_omniglot_iwae(download=False)
    for got, expected in zip(from_folder, from_env):
        np.testing.assert_array_equal(got, expected)


def test_omniglot_missing_file_names_path_and_url(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_omniglot_iwae(tmp_path, download=False)
    assert str(tmp_path / 'chardata.mat') in str(error.value)
    assert datasets.DOWNLOAD_URLS['chardata.mat'] in str(error.value)


def test_omniglot_unreadable_file_raises_dataset_error(tmp_path):
    path = tmp_path / 'chardata.mat'
    path.write_bytes(b'this is not a MATLAB file')
    with pytest.raises(DatasetError, match='corrupt') as error:
        load_omniglot_iwae(path, download=False)
    assert str(path) in str(error.value)


def test_omniglot_missing_variable_raises_dataset_error(tmp_path):
    path = tmp_path / 'chardata.mat'
    scipy.io.savemat(str(path), {'data': np.zeros((784, 2))})
    with pytest.raises(DatasetError, match='lacks .*target, targetchar'):
        load_omniglot_iwae(path, download=False)


# --- the original Parmesan's names, arguments and files ----------------------

def test_datasets_and_preprocessing_are_attributes_after_import_parmesan():
    script = ("import parmesan\n"
              "print(parmesan.datasets.load_cifar10.__name__, "
              "parmesan.preprocessing.ZCA.__name__)")
    output = subprocess.run([sys.executable, '-c', script], check=True,
                            capture_output=True, text=True).stdout
    assert output.split()[-2:] == ['load_cifar10', 'ZCA']


def _write_pickle(path, obj, gz=True):
    # Protocol 2, as the original's Python 2 cPickle wrote its caches.
    raw = __import__('pickle').dumps(obj, protocol=2)
    with open(str(path), 'wb') as f:
        f.write(gzip.compress(raw) if gz else raw)


def test_mnist_dataset_argument_reads_the_original_pickle(tmp_path):
    rng = np.random.RandomState(3)
    splits = [(rng.rand(n, 784).astype(np.float32), rng.randint(10, size=n))
              for n in (5, 3, 4)]
    path = tmp_path / 'mnist_copy.pkl.gz'
    _write_pickle(path, splits)
    loaded = load_mnist_realval(dataset=str(path))
    for got, expected in zip(loaded, [a for pair in splits for a in pair]):
        np.testing.assert_array_equal(got, expected)
    assert loaded[1].dtype == np.int32
    binary = [(rng.rand(n, 784) < 0.5).astype(float) for n in (5, 3, 4)]
    path = tmp_path / 'binarized.pkl.gz'
    _write_pickle(path, binary)
    for got, expected in zip(load_mnist_binarized(dataset=path), binary):
        np.testing.assert_array_equal(got, expected)
    # The original's positional call.
    for got, expected in zip(load_mnist_binarized(str(path)), binary):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match='not both'):
        load_mnist_realval(tmp_path, dataset=path)


def test_mnist_pickle_under_the_official_name_is_md5_checked(tmp_path):
    path = tmp_path / 'mnist.pkl.gz'
    _write_pickle(path, [(np.zeros((1, 784)), np.zeros(1))] * 3)
    with pytest.raises(DatasetError, match='md5') as error:
        load_mnist_realval(dataset=path, download=False)
    assert str(path) in str(error.value)


def test_pickle_that_calls_code_is_refused(tmp_path):
    path = tmp_path / 'evil.pkl.gz'
    _write_pickle(path, [os.system, 1, 2])
    with pytest.raises(DatasetError, match='system'):
        load_mnist_binarized(dataset=path)


def test_omniglot_iwae_transposed_gives_the_original_layout(tmp_path):
    path = tmp_path / 'chardata.mat'
    contents, _ = _write_chardata(path)
    upright = load_omniglot_iwae(dataset=path)[0]
    original = load_omniglot_iwae(dataset=path, transposed=True)[0]
    # The original Parmesan returned data.T: MATLAB's column-major images.
    np.testing.assert_allclose(original, contents['data'].T, rtol=1e-6)
    np.testing.assert_allclose(
        original.reshape(-1, 28, 28), upright.reshape(-1, 28, 28).transpose(
            0, 2, 1), rtol=1e-6)


def _tar_gz(path, members):
    with tarfile.open(str(path), 'w:gz') as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _without_md5(monkeypatch, *names):
    for name in names:
        monkeypatch.delitem(datasets.KNOWN_MD5, name)


def _cifar_archive(path, rng, rows=4):
    batches = {}
    for name in ['data_batch_%d' % i for i in range(1, 6)] + ['test_batch']:
        batches[name] = {'data': rng.randint(0, 256, (rows, 3072)).astype(
            np.uint8), 'labels': list(rng.randint(0, 10, rows))}
    _tar_gz(path, {'cifar-10-batches-py/' + name: pickle.dumps(batch, 2)
                   for name, batch in batches.items()})
    return batches


def test_cifar10_reads_the_archive_into_nhwc(monkeypatch, tmp_path):
    _without_md5(monkeypatch, 'cifar-10-python.tar.gz')
    batches = _cifar_archive(tmp_path / 'cifar-10-python.tar.gz',
                             np.random.RandomState(0))
    x_train, t_train, x_test, t_test = load_cifar10(
        tmp_path, normalize=False, dequantify=False)
    train = np.concatenate([batches['data_batch_%d' % i]['data']
                            for i in range(1, 6)])
    assert x_train.shape == (20, 32, 32, 3) and x_train.dtype == np.float32
    # Pixel (row 2, column 5) of channel 1 of image 3: CIFAR stores 1024
    # red, then 1024 green, then 1024 blue values, each image row by row.
    assert x_train[3, 2, 5, 1] == train[3, 1024 + 2 * 32 + 5]
    np.testing.assert_array_equal(t_test, batches['test_batch']['labels'])
    np.testing.assert_array_equal(t_train[:4], batches['data_batch_1'][
        'labels'])
    # Dequantised with U(0, 1) noise, train first, then divided by the
    # training maximum, as the original did.
    noisy_train, _, noisy_test, _ = load_cifar10(
        dataset=tmp_path / 'cifar-10-python.tar.gz',
        rng=np.random.RandomState(5))
    r = np.random.RandomState(5)
    raw_train = x_train + r.uniform(0, 1, (20, 3072)).astype(np.float32
                                                             ).reshape(
        20, 3, 32, 32).transpose(0, 2, 3, 1)
    raw_test = x_test + r.uniform(0, 1, (4, 3072)).astype(np.float32).reshape(
        4, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(noisy_train, raw_train / raw_train.max(),
                               rtol=1e-6)
    np.testing.assert_allclose(noisy_test, raw_test / raw_train.max(),
                               rtol=1e-6)


def test_cifar10_archive_is_md5_checked_and_missing_one_named(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path, download=False)
    assert str(tmp_path / 'cifar-10-python.tar.gz') in str(error.value)
    assert datasets.DOWNLOAD_URLS['cifar-10-python.tar.gz'] in str(
        error.value)
    _cifar_archive(tmp_path / 'cifar-10-python.tar.gz',
                   np.random.RandomState(1))
    with pytest.raises(DatasetError, match='md5'):
        load_cifar10(tmp_path, download=False)


def test_svhn_images_and_the_originals_labels(monkeypatch, tmp_path):
    _without_md5(monkeypatch, 'train_32x32.mat', 'test_32x32.mat',
                 'extra_32x32.mat')
    rng = np.random.RandomState(2)
    stored = {}
    for name, n in (('train', 5), ('test', 3), ('extra', 2)):
        X = rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8)
        y = rng.randint(1, 11, (n, 1)).astype(np.uint8)
        scipy.io.savemat(str(tmp_path / ('%s_32x32.mat' % name)),
                         {'X': X, 'y': y})
        stored[name] = X, y
    x_train, t_train, x_test, t_test = load_svhn(
        str(tmp_path) + '/', normalize=False, dequantify=False, extra=True)
    X, y = stored['train']
    assert x_train.shape == (7, 32, 32, 3)
    np.testing.assert_array_equal(x_train[4], X[:, :, :, 4])
    np.testing.assert_array_equal(x_train[6], stored['extra'][0][..., 1])
    np.testing.assert_array_equal(t_train[:5], y.ravel() - 1)
    np.testing.assert_array_equal(t_test, stored['test'][1].ravel() - 1)
    assert load_svhn(data_dir=tmp_path, dequantify=False)[0].max() == 1


def _norb_bytes(array):
    magic = 0x1E3D4C55 if array.dtype == np.uint8 else 0x1E3D4C54
    dims = list(array.shape) + [1] * (3 - array.ndim)
    header = struct.pack('<%di' % (2 + len(dims)), magic, array.ndim, *dims)
    return gzip.compress(header + array.astype(array.dtype.newbyteorder(
        '<')).tobytes())


def test_norb_small_block_averages_both_cameras(tmp_path):
    rng = np.random.RandomState(4)
    stored = {}
    for split, n in (('train', 3), ('test', 2)):
        images = rng.randint(0, 256, (n, 2, 96, 96)).astype(np.uint8)
        labels = rng.randint(0, 5, n).astype(np.int32)
        dat, cat = datasets._NORB_FILES[split]
        (tmp_path / dat).write_bytes(_norb_bytes(images))
        (tmp_path / cat).write_bytes(_norb_bytes(labels))
        stored[split] = images, labels
    x_train, t_train, x_test, t_test = load_norb_small(
        tmp_path, dequantify=False, normalize=False)
    images, labels = stored['train']
    assert x_train.shape == (6, 1024) and t_train.dtype == np.float32
    # Right camera of image 1, pixel (4, 7): the mean of its 3x3 block.
    block = images[1, 1, 12:15, 21:24].astype(float)
    assert x_train[3 + 1, 4 * 32 + 7] == pytest.approx(block.mean())
    np.testing.assert_array_equal(t_train, np.tile(labels, 2))
    assert x_test.shape == (4, 1024)


def test_norb_small_reads_the_originals_cache(tmp_path):
    rng = np.random.RandomState(6)
    cache = [rng.rand(4, 1024).astype(np.float32) * 255, np.arange(4.),
             rng.rand(2, 1024).astype(np.float32) * 255, np.arange(2.)]
    _write_pickle(tmp_path / 'norbsmall32x32.cpkl', cache, gz=False)
    x_train, t_train, x_test, _ = load_norb_small(
        tmp_path / 'norbsmall32x32.cpkl', dequantify=False)
    np.testing.assert_allclose(x_train, cache[0] / cache[0].max(),
                               rtol=1e-6)
    np.testing.assert_allclose(x_test, cache[2] / cache[0].max(), rtol=1e-6)


def test_stl10_images_upright_and_labels_from_zero(monkeypatch, tmp_path):
    _without_md5(monkeypatch, 'stl10_binary.tar.gz')
    rng = np.random.RandomState(7)
    images = {name: rng.randint(0, 256, (n, 3, 96, 96)).astype(np.uint8)
              for name, n in (('train', 2), ('test', 1), ('unlabeled', 3))}
    labels = {'train': np.array([1, 10], np.uint8),
              'test': np.array([4], np.uint8)}
    # Stored column-major: each channel transposed.
    members = {'stl10_binary/%s_X.bin' % name: x.transpose(0, 1, 3, 2)
               .tobytes() for name, x in images.items()}
    members.update({'stl10_binary/%s_y.bin' % name: y.tobytes()
                    for name, y in labels.items()})
    _tar_gz(tmp_path / 'stl10_binary.tar.gz', members)
    x_train, t_train, x_test, t_test, x_unlab = load_stl10(tmp_path)
    np.testing.assert_array_equal(x_train, images['train'])
    np.testing.assert_array_equal(x_unlab, images['unlabeled'])
    np.testing.assert_array_equal(t_train, [0, 9])
    np.testing.assert_array_equal(t_test, [3])
    with pytest.raises(ValueError, match='normalize'):
        load_stl10(tmp_path, normalize=True)


def test_frey_faces_from_the_mat_file_and_the_originals_cache(tmp_path):
    rng = np.random.RandomState(8)
    faces = rng.randint(0, 256, (4, 28, 20)).astype(np.uint8)
    # Roweis's file: one face per column, each flattened row-major.
    scipy.io.savemat(str(tmp_path / 'frey_rawface.mat'),
                     {'ff': faces.reshape(4, 560).T})
    loaded = load_frey_faces(tmp_path, dequantify=False)
    np.testing.assert_allclose(loaded, faces / faces.max(), rtol=1e-6)
    _write_pickle(tmp_path / 'cached.pkl.gz', [faces.reshape(4, 560)])
    np.testing.assert_allclose(load_frey_faces(
        tmp_path / 'cached', normalize=False, dequantify=False), faces)


class _Bunch(object):
    def __init__(self, **fields):
        self.__dict__.update(fields)


def _fake_sklearn(monkeypatch, **functions):
    import types
    package = types.ModuleType('sklearn')
    module = types.ModuleType('sklearn.datasets')
    module.__dict__.update(functions)
    package.datasets = module
    monkeypatch.setitem(sys.modules, 'sklearn', package)
    monkeypatch.setitem(sys.modules, 'sklearn.datasets', module)


@pytest.mark.parametrize('loader', [datasets.load_lfw,
                                    datasets.load_20newsgroup,
                                    datasets.load_rcv1])
def test_sklearn_loaders_say_it_is_an_optional_dependency(monkeypatch,
                                                          tmp_path, loader):
    monkeypatch.setitem(sys.modules, 'sklearn', None)
    monkeypatch.setitem(sys.modules, 'sklearn.datasets', None)
    with pytest.raises(ImportError, match='pip install scikit-learn'):
        loader(data_dir=tmp_path)


def test_lfw_through_scikit_learn_in_8_bit_pixels(monkeypatch, tmp_path):
    images = np.random.RandomState(9).rand(3, 4, 5, 3).astype(np.float32)
    calls = []

    def fetch_lfw_people(**kwargs):
        calls.append(kwargs)
        return _Bunch(images=images, target=np.arange(3))
    _fake_sklearn(monkeypatch, fetch_lfw_people=fetch_lfw_people)
    faces = load_lfw(data_dir=tmp_path, size=0.5, dequantify=False,
                     normalize=False)
    assert calls == [dict(data_home=str(tmp_path), color=True, resize=0.5,
                          download_if_missing=True)]
    np.testing.assert_array_equal(faces, np.floor(images * 255))
    _write_pickle(tmp_path / 'lfw_0.25.cpkl', [np.full((2, 3, 3, 3), 7,
                                                       np.uint8), [0, 1]])
    np.testing.assert_array_equal(
        load_lfw(tmp_path / 'lfw', dequantify=False), np.ones((2, 3, 3, 3)))


def test_rcv1_keeps_the_words_in_most_training_documents(monkeypatch,
                                                         tmp_path):
    import scipy.sparse
    train = np.array([[0., 2., 0., 1.], [0., 1., 3., 0.], [0., 0., 0., 5.],
                      [1., 0., 0., 0.]])
    test = np.array([[1., 0., 0., 0.], [0., 4., 0., 2.]])
    targets = {'train': np.eye(4)[:, :3], 'test': np.eye(2, 3)}

    def fetch_rcv1(data_home, subset, download_if_missing):
        data = train if subset == 'train' else test
        return _Bunch(data=scipy.sparse.csr_matrix(data),
                      target=scipy.sparse.csr_matrix(targets[subset]))
    _fake_sklearn(monkeypatch, fetch_rcv1=fetch_rcv1)
    x_train, y_train, x_test, y_test = load_rcv1(tmp_path, max_features=2)
    # Words 1 and 3 are in two training documents each; document 3 and
    # test document 0 have none of them and are dropped.
    kept = train[:3][:, [1, 3]]
    np.testing.assert_allclose(x_train.toarray(),
                               kept / kept.sum(1, keepdims=True))
    np.testing.assert_array_equal(y_train.toarray(), targets['train'][:3])
    np.testing.assert_allclose(x_test.toarray(), [[4 / 6., 2 / 6.]])
    np.testing.assert_array_equal(y_test.toarray(), targets['test'][1:])


def test_20newsgroup_reads_the_originals_cache(tmp_path):
    x_train = np.array([[1., 3.], [0., 0.], [2., 2.]])
    x_test = np.array([[0., 0.], [0., 5.]])
    _write_pickle(tmp_path / '20newsgroup_mf2.pkl',
                  [(x_train, np.array([4, 5, 6])), (x_test, np.array([7, 8])),
                   [u'word', u'other']], gz=False)
    loaded = load_20newsgroup(str(tmp_path) + '/', max_feat=2)
    expected = [[0.25, 0.75], [0.5, 0.5]], [4, 6], [[0., 1.]], [8]
    for got, want in zip(loaded, expected):
        np.testing.assert_allclose(got, want)
        assert got.dtype == np.float32


def _omniglot_png(ink):
    from PIL import Image
    image = Image.new('1', (105, 105), 1)  # white paper
    pixels = image.load()
    for row in range(105):
        for column in range(105):
            if ink(row, column):
                pixels[column, row] = 0
    out = io.BytesIO()
    image.save(out, format='PNG')
    return out.getvalue()


def test_omniglot_32x32_splits_drawers_16_to_20_into_test(tmp_path):
    blank = _omniglot_png(lambda row, column: False)
    full = _omniglot_png(lambda row, column: True)
    left = _omniglot_png(lambda row, column: column < 52)
    for name in ('background', 'evaluation'):
        folder = 'images_%s/Alphabet/character01/' % name
        with zipfile.ZipFile(str(tmp_path / ('images_%s.zip' % name)),
                             'w') as archive:
            archive.writestr(folder + '0101_01.png', full)
            archive.writestr(folder + '0101_02.png', left)
            archive.writestr(folder + '0101_16.png', blank)
            archive.writestr(folder + '0101_20.png', full)
    x_train, x_test = load_omniglot(tmp_path)
    assert x_train.shape == (4, 1024) and x_test.shape == (4, 1024)
    np.testing.assert_allclose(x_train[0], 1)  # ink is 1
    np.testing.assert_allclose(x_test[0], 0)
    np.testing.assert_allclose(x_test[1], 1)
    image = x_train[1].reshape(32, 32)
    np.testing.assert_allclose(image[:, :14], 1, atol=0.02)
    np.testing.assert_allclose(image[:, 18:], 0, atol=0.02)


def test_rotten_tomatoes_characters_vocabulary_and_shuffle(tmp_path):
    _tar_gz(tmp_path / 'rt-polaritydata.tar.gz', {
        'rt-polaritydata/rt-polarity.pos': u'AAb\nba\n'.encode('latin-1'),
        'rt-polaritydata/rt-polarity.neg': u'c\xe9ab \n'.encode('latin-1')})
    X, y, mask, vocab = load_rotten_tomatoes(tmp_path, vocab_size=2)
    assert vocab == ['a', 'b']  # the two most frequent characters
    # Unknown characters map to len(vocab); padding is 0 under mask 0.
    rows = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [2, 2, 0, 1]])
    masks = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    np.random.seed(1234)  # the original's shuffle
    order = np.random.permutation(3)
    np.testing.assert_array_equal(X, rows[order])
    np.testing.assert_array_equal(mask, masks[order])
    np.testing.assert_array_equal(y, np.array([1, 1, 0])[order])
    X, y, _, vocab = load_rotten_tomatoes(tmp_path, vocab_size='ab c',
                                          minimum_len=3)
    assert vocab == ['a', 'b', ' ', 'c'] and len(X) == 2
