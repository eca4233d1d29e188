"""The compile reports of the trainers: elapsed time and the C modules
Theano built, checked against the clock and the compile cache's folder."""
import io
import os
import re
import subprocess
import sys
import time

from parmesan.experiments.compiling import compiling, modules_built


def test_reports_elapsed_time_while_compiling_and_at_the_end():
    modules_built()  # Theano reads its compile cache once per process
    stream = io.StringIO()
    start = time.time()
    with compiling('a slow thing', stream=stream, interval=0.05):
        time.sleep(0.4)
    elapsed = time.time() - start
    lines = stream.getvalue().splitlines()
    assert lines[0] == 'compiling a slow thing...'
    progress = [float(re.match(r'compiling a slow thing\.\.\. ([\d.]+) s, '
                               r'0 C modules built$', line).group(1))
                for line in lines[1:-1]]
    assert len(progress) >= 3
    assert progress == sorted(progress)
    assert 0.05 <= progress[0] and progress[-1] <= elapsed + 0.05
    final = re.match(r'compiled a slow thing in ([\d.]+) s '
                     r'\(0 C modules built\)$', lines[-1])
    assert abs(float(final.group(1)) - elapsed) <= 0.1


COMPILE_A_GRAPH = """
import glob, io, os, sys
import numpy as np
import theano, theano.tensor as T
from parmesan.experiments.compiling import compiling
x = T.matrix('x')
stream = io.StringIO()
with compiling('a graph', stream=stream, interval=3600):
    f = theano.function([x], T.exp(x).dimshuffle(1, 0) * 2 + x.sum())
assert np.allclose(f(np.ones((1, 1), x.dtype)), 2 * np.e + 1)
print(stream.getvalue().splitlines()[-1])
print(len(glob.glob(os.path.join(theano.config.compiledir, 'tmp*',
                                 'mod.cpp'))))
"""


def test_counts_the_modules_theano_compiles(tmp_path):
    """On an empty compile cache of its own, a process reports as many
    built modules as appear in the cache's folder; a second process, none.
    """
    env = dict(os.environ, THEANO_FLAGS='base_compiledir=%s' % tmp_path)
    counts = []
    for _ in range(2):
        result = subprocess.run([sys.executable, '-c', COMPILE_A_GRAPH],
                                env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        report, folders = result.stdout.splitlines()[-2:]
        built = int(re.search(r'\((\d+) C modules built\)$',
                              report).group(1))
        counts.append((built, int(folders)))
    (first, folders_first), (second, folders_second) = counts
    assert first == folders_first >= 1
    assert second == 0 and folders_second == folders_first
