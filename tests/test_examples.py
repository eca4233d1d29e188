"""Every script in examples/ runs end to end for a tiny budget, as
Lasagne's own test of its examples does: each has ``main(argv=None)``,
trains on a few hundred real MNIST images and writes its results."""
import glob
import importlib
import json
import math
import os
import sys

import pytest

from conftest import REPO, data_dir

EXAMPLES = os.path.join(REPO, 'examples')
sys.path.insert(0, EXAMPLES)

_VAE = ['--train-subset', '200', '-nepochs', '1', '--eval-subset', '20',
        '--eval-iw', '3', '--final-iw', '3', '-nhidden', '10', '-nlatent',
        '3', '--num-layers', '1', '-batch_size', '50']
_M2 = ['--train-subset', '200', '--eval-subset', '100', '-ep', '1',
       '-qh', '8', '-ph', '8', '-ds', '2', '-ql', '1', '-al', '1', '-zl', '1',
       '-pl', '1', '-bs', '50']

#: A tiny budget for each example; a new example needs an entry here.
TINY_ARGV = {
    'vae_demo': ['--updates', '60'],
    'vae_vanilla': _VAE,
    'iw_vae': _VAE + ['-iw_samples', '2'],
    'iw_vae_normflow': _VAE + ['-nflows', '1'],
    'vimco': _VAE + ['-iw_samples', '2'],
    'mnist_ladder': ['--layers', '784,20,10', '-lambdas', '1000,10,0.1',
                     '--train-subset', '200', '-nepochs', '1'],
    'm2': _M2 + ['-model', 'GumbelSoftmaxM2'],
    'm2_multiseed': ['--models', 'MLP', '--seeds', '1'] + _M2,
    'sweep': ['m2', '--models', 'MLP', '--seeds', '1'] + _M2,
}


def example_names():
    return sorted(os.path.splitext(os.path.basename(path))[0]
                  for path in glob.glob(os.path.join(EXAMPLES, '*.py')))


def test_every_example_has_a_tiny_budget():
    assert example_names() == sorted(TINY_ARGV)


@pytest.mark.parametrize('name', example_names())
def test_example_runs_with_a_tiny_budget(name, tmp_path, capsys):
    module = importlib.import_module(name)
    argv = TINY_ARGV[name] + ['--data-dir', data_dir(),
                              '-outfolder', str(tmp_path)]
    returned = module.main(argv)
    if name == 'vae_demo':
        test_elbo, test_l50 = returned
        first_train_elbo = float(
            (tmp_path / 'log.txt').read_text().split()[4])
        # An untrained Bernoulli decoder scores 784 log 2 = 543 nats.
        assert -543 < first_train_elbo and test_elbo > -300
        assert test_l50 >= test_elbo
        return
    if name in ('m2_multiseed', 'sweep'):
        assert {row['setting'] for row in returned} == {'model=MLP'}
        assert (tmp_path / 'model=MLP' / 'seed1' / 'results.json').is_file()
        assert (tmp_path / 'summary.csv').is_file()
        return
    with open(str(tmp_path / 'results.json')) as stream:
        results = json.load(stream)
    assert results == json.loads(json.dumps(returned))
    numbers = [value for value in results.values()
               if isinstance(value, float)]
    assert numbers and all(math.isfinite(value) for value in numbers)
    assert (tmp_path / 'checkpoint.npz').is_file()
