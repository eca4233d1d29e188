"""The README's set-up commands stay true: CI runs the test command."""
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, data_dir, readme_python_block


def readme_commands():
    with open(os.path.join(REPO, 'README.rst')) as readme:
        return re.findall(r'^    (python3\.11 -m venv .*)$', readme.read(),
                          re.MULTILINE)


def test_ci_runs_the_readme_test_command():
    commands = readme_commands()
    assert len(commands) == 2
    with open(os.path.join(REPO, '.ci', 'run')) as ci:
        ci_lines = ci.read().splitlines()
    assert commands[1] in ci_lines


def test_readme_is_valid_restructuredtext():
    """A malformed table renders as an error box on the project page."""
    docutils_core = pytest.importorskip('docutils.core')
    with open(os.path.join(REPO, 'README.rst')) as readme:
        text = readme.read()
    # halt_level 2: the first warning raises, naming the line
    docutils_core.publish_doctree(text, source_path='README.rst',
                                  settings_overrides={
                                      'halt_level': 2, 'report_level': 2,
                                      'warning_stream': io.StringIO()})


def test_main_job_names_an_existing_example():
    script = readme_commands()[0].split()[-1]
    assert os.path.isfile(os.path.join(REPO, script))


def test_quickstart_is_about_25_lines():
    code = readme_python_block('Quickstart')
    assert 20 <= len(code.splitlines()) <= 32
    assert 'SampleLayer' in code and 'lasagne.updates' in code


@pytest.mark.slow
def test_quickstart_runs_as_printed_and_learns(tmp_path):
    """Run from an empty folder in a fresh interpreter; its L_1 must beat
    the best factorised Bernoulli model of the pixels (fitted here with
    numpy on the training images: an independent reference) and L_100
    must be at least L_1."""
    folder = data_dir()
    env = dict(os.environ, PARMESAN_DATA=folder)
    env.pop('THEANO_FLAGS', None)  # as a user runs it: Parmesan's defaults
    result = subprocess.run([sys.executable, '-c', readme_python_block('Quickstart')],
                            cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    found = dict(re.findall(r'^test (L_\d+): (-?[\d.]+) nats$',
                            result.stdout, re.MULTILINE))
    assert sorted(found) == ['L_1', 'L_100']
    l_1, l_100 = float(found['L_1']), float(found['L_100'])

    from parmesan.datasets import load_mnist_dynamic
    x_train, _, _, _, x_test, _ = load_mnist_dynamic(folder)
    p = np.clip(x_train.mean(axis=0), 1e-3, 1 - 1e-3)
    x = x_test[:1000]
    factorised = np.mean(x @ np.log(p) + (1 - x) @ np.log(1 - p))
    # an untrained model scores about 784 log 2 = 543 nats
    assert factorised > -784 * np.log(2)
    assert l_1 > factorised + 50
    assert l_100 >= l_1
