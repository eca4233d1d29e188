import os

# Parmesan ships floatX=float32 for speed; the suite checks the mathematics
# against float64 references to 1e-9, so it runs in float64 unless the
# user's THEANO_FLAGS choose (``THEANO_FLAGS=floatX=float32 pytest`` runs it
# in float32 with float32 tolerances). Must precede the first Theano import.
if 'floatx' not in os.environ.get('THEANO_FLAGS', '').lower():
    os.environ['THEANO_FLAGS'] = ','.join(
        ['floatX=float64'] + [f for f in [os.environ.get('THEANO_FLAGS')]
                              if f])

import numpy as np  # noqa: E402
import pytest  # noqa: E402
# Parmesan before Theano, as its users do: its speed defaults other than
# floatX (allow_gc, vector math) apply to the suite too.
import parmesan  # noqa: E402,F401
import theano  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def floatx(array):
    return np.asarray(array, dtype=theano.config.floatX)


#: Relative tolerance for comparing a Theano result with a float64 reference.
RTOL = 1e-4 if theano.config.floatX == 'float32' else 1e-9


def data_dir():
    """The real data sets: $PARMESAN_DATA, else ../shared/data beside the
    repo; skips the calling test when there is none."""
    path = os.environ.get('PARMESAN_DATA') or \
        os.path.join(REPO, '..', 'shared', 'data')
    if not os.path.isdir(path):
        pytest.skip('no data directory at %s (set PARMESAN_DATA)' % path)
    return os.path.abspath(path)


def readme_python_block(heading):
    """The first Python code block of the README section `heading`, as
    printed (the examples the README shows are run by the tests)."""
    with open(os.path.join(REPO, 'README.rst')) as readme:
        section = readme.read().split('\n%s\n' % heading, 1)[1]
    block = section.split('.. code-block:: python\n\n', 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith('    '):
            break
        lines.append(line[4:])
    return '\n'.join(lines).strip() + '\n'


@pytest.fixture
def shared_data_dir():
    return data_dir()


def pytest_collection_finish(session):
    """Start the OpenCL worker of test_gpu_backend.py as soon as the tests
    are known: it compiles on the other core while the rest run."""
    for item in session.items:
        module = getattr(item, 'module', None)
        if module is not None and hasattr(module, 'start_device_worker'):
            module.start_device_worker(session)
            return
