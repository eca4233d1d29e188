import os

import numpy as np
import pytest
import theano

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def floatx(array):
    return np.asarray(array, dtype=theano.config.floatX)


#: Relative tolerance for comparing a Theano result with a float64 reference.
RTOL = 1e-4 if theano.config.floatX == 'float32' else 1e-9


@pytest.fixture
def shared_data_dir():
    """The real data sets: $PARMESAN_DATA, else ../shared/data beside the repo."""
    path = os.environ.get('PARMESAN_DATA') or \
        os.path.join(REPO, '..', 'shared', 'data')
    if not os.path.isdir(path):
        pytest.skip('no data directory at %s (set PARMESAN_DATA)' % path)
    return os.path.abspath(path)
