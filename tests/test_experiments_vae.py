"""Short runs of the VAE examples (vae_vanilla, iw_vae, iw_vae_normflow,
vimco) on a few hundred real MNIST images, their flags, and the importance
weight of the flow model against a numpy recomputation.

Theano's compilation dominates the time, so each configuration is trained
once per module and every check reads that run's output folder.
"""
import argparse
import functools
import importlib
import json
import math
import os
import sys

import numpy as np
import pytest
import lasagne
import theano
import theano.tensor as T

from parmesan import datasets
from parmesan.experiments import vae as vae_training
from parmesan.experiments import vimco as vimco_module
from parmesan.layers import (InverseAutoregressiveFlowLayer,
                             NormalizingPlanarFlowLayer,
                             NormalizingRadialFlowLayer)
from parmesan.experiments.vae import (VAE_VANILLA_DEFAULTS,
                                      VariationalAutoencoder,
                                      vae_argument_parser)
from conftest import REPO, RTOL, data_dir, floatx

sys.path.insert(0, os.path.join(REPO, 'examples'))
vae_vanilla = importlib.import_module('vae_vanilla')
iw_vae_normflow = importlib.import_module('iw_vae_normflow')
vimco_example = importlib.import_module('vimco')
iw_vae_main = importlib.import_module('iw_vae').main

ENTRY_POINTS = {'vae_vanilla': vae_vanilla.main, 'iw_vae': iw_vae_main,
                'iw_vae_normflow': iw_vae_normflow.main,
                'vimco': vimco_example.main}

# A tiny, fast-learning setting: 300 images in batches of 50 at a large
# learning rate, so the bound rises clearly from epoch 1 to epoch 2.
QUICK = ['--train-subset', '300', '-nepochs', '2', '--eval-subset', '50',
         '--eval-iw', '5', '--final-iw', '5', '--test-subset', '40',
         '-eval_epoch', '1',
         '-nhidden', '20', '-nlatent', '5', '--num-layers', '1',
         '-batch_size', '50', '-lr', '0.003']

#: name: (entry point, extra flags, expected settings, expected flow layer)
RUNS = {
    'vae_vanilla': ('vae_vanilla', [],
                    dict(dataset='fixed', batch_norm=False), None),
    'iw_vae_sample': ('iw_vae', ['-dataset', 'sample', '-iw_samples', '3'],
                      dict(dataset='sample', batch_norm=True,
                           iw_samples=3), None),
    'iw_vae_fixed': ('iw_vae', ['-dataset', 'fixed', '-batch_norm', 'False'],
                     dict(dataset='fixed', batch_norm=False), None),
    # Batch norm stays on (the default) to cover its statistics collection.
    'normflow_planar': ('iw_vae_normflow',
                        ['--flow', 'planar', '-nflows', '2',
                         '-iw_samples', '3'],
                        dict(flow='planar', nflows=2, iw_samples=3,
                             batch_norm=True, dataset='sample'),
                        NormalizingPlanarFlowLayer),
    'normflow_radial': ('iw_vae_normflow',
                        ['--flow', 'radial', '-nflows', '2',
                         '-batch_norm', 'False'],
                        dict(flow='radial', nflows=2),
                        NormalizingRadialFlowLayer),
    'normflow_iaf': ('iw_vae_normflow',
                     ['--flow', 'iaf', '-nflows', '2', '--iaf-hidden', '10',
                      '-batch_norm', 'False'],
                     dict(flow='iaf', nflows=2),
                     InverseAutoregressiveFlowLayer),
    'vimco': ('vimco', ['-iw_samples', '3'],
              dict(dataset='sample', batch_norm=False, iw_samples=3,
                   prior='fixed'), None),
}
# Each run compiles its own graphs: 15-20 s of CPU, but 40-70 s of wall time
# on this busy machine, so only three runs stay in the quick suite. Their
# flags are still checked without training below.
SLOW_RUNS = {'iw_vae_sample', 'iw_vae_fixed', 'normflow_radial',
             'normflow_iaf'}

GAUSSIAN_PLOTS = ['curves.png', 'samples.png', 'reconstructions.png',
                  'latent_kl.png', 'latent_activity.png']
VIMCO_PLOTS = ['curves.png', 'samples.png', 'reconstructions.png',
               'latent_activity.png']


_ORIGINAL_LOAD_DATA = vae_training.load_data


@functools.lru_cache(maxsize=None)
def _load(dataset, data_dir, train_subset):
    return _ORIGINAL_LOAD_DATA(argparse.Namespace(
        dataset=dataset, data_dir=data_dir, train_subset=train_subset))


def cached_load_data(args):
    """vae_training.load_data, reading each data set once per module
    (several seconds each here). The trainers never modify the arrays."""
    return _load(args.dataset, args.data_dir, args.train_subset)


@functools.lru_cache(maxsize=None)
def larochelle_training_images():
    return datasets.load_mnist_binarized(data_dir())[0]


class Stop(Exception):
    """Ends a run right after the model is built (no compiling)."""


def record_models(monkeypatch, stop=False):
    """Make the trainers append every model they build to the returned list
    (and raise :class:`Stop` right after, if `stop`)."""
    built = []

    def recording(model_class):
        def build(*args, **kwargs):
            built.append(model_class(*args, **kwargs))
            if stop:
                raise Stop()
            return built[-1]
        return build
    monkeypatch.setattr(vae_training, 'VariationalAutoencoder',
                        recording(VariationalAutoencoder))
    monkeypatch.setattr(vimco_module, 'BernoulliLatentVAE',
                        recording(vimco_module.BernoulliLatentVAE))
    return built


@pytest.fixture(scope='module', params=[
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_RUNS
    else name for name in RUNS])
def finished_run(request, tmp_path_factory):
    """Train one configuration for two epochs; return its name, output
    folder, results and model."""
    name = request.param
    entry, flags, _, _ = RUNS[name]
    folder = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as monkeypatch:
        models = record_models(monkeypatch)
        monkeypatch.setattr(vae_training, 'load_data', cached_load_data)
        monkeypatch.setattr(vimco_module, 'load_data', cached_load_data)
        results = ENTRY_POINTS[entry](QUICK + flags + [
            '--data-dir', data_dir(), '-outfolder', str(folder)])
    return name, folder, results, models[0]


def logged_rows(folder):
    with open(os.path.join(str(folder), 'log.jsonl')) as stream:
        return [json.loads(line) for line in stream]


def test_run_writes_logs_checkpoint_results_and_plots(finished_run):
    name, folder, results, _ = finished_run
    plots = VIMCO_PLOTS if name == 'vimco' else GAUSSIAN_PLOTS
    for file_name in ['log.txt', 'log.jsonl', 'checkpoint.npz',
                      'results.json'] + plots:
        path = folder / file_name
        assert path.is_file() and path.stat().st_size > 0, file_name
    with open(str(folder / 'results.json')) as stream:
        assert json.load(stream) == json.loads(json.dumps(results))
    assert [row['epoch'] for row in logged_rows(folder)] == [1, 2]


def test_training_bound_rises_from_epoch_1_to_epoch_2(finished_run):
    first, second = logged_rows(finished_run[1])
    # An untrained Bernoulli decoder scores about 784 log 2 = 543 nats.
    assert -600 < first['train_bound'] < second['train_bound'] < 0


def test_test_ll_is_finite_and_more_samples_give_a_tighter_bound(
        finished_run):
    _, folder, results, _ = finished_run
    assert math.isfinite(results['test_LL']) and results['test_LL'] < 0
    assert results['test_images'] == 40  # --test-subset
    assert results['epochs'] == 2 and results['eval_importance_samples'] == 5
    for row in logged_rows(folder):
        # L_5 >= L_1 holds in expectation; 50 images make the gap of these
        # barely trained models (several nats) far larger than the noise.
        assert row['test_L5'] > row['test_L1']


def test_run_uses_the_requested_settings(finished_run):
    name, _, results, model = finished_run
    _, _, expected, flow_class = RUNS[name]
    for key, value in expected.items():
        assert results['settings'][key] == value, key
    assert bool(model.normalize_layers()) == \
        results['settings']['batch_norm']
    if flow_class is not None:
        flows = [layer for layer in lasagne.layers.get_all_layers(
            model.output_layers) if isinstance(layer, flow_class)]
        assert len(flows) == 2


# -- flags, checked without training ------------------------------------

def test_vae_vanilla_defaults_are_kingma_and_wellings_setup():
    args = vae_argument_parser(
        'test', VAE_VANILLA_DEFAULTS).parse_args([])
    for name, value in dict(dataset='fixed', batch_size=100, nhidden=200,
                            nlayers=2, nlatent=100, nonlin_enc='softplus',
                            nonlin_dec='softplus', lr=3e-4, nepochs=1000,
                            seed=1234, batch_norm=False, iw_samples=1,
                            outfolder='results/vae_vanilla').items():
        assert getattr(args, name) == value, name
    schedule = vae_training.apply_preset(args, [])
    assert schedule(1) == schedule(args.nepochs) == schedule(5000) == 3e-4


@pytest.mark.parametrize('entry', sorted(ENTRY_POINTS))
def test_an_unknown_flag_exits_with_an_error_naming_it(entry, capsys):
    with pytest.raises(SystemExit) as stop:
        ENTRY_POINTS[entry](['-nhiden', '20'])
    assert stop.value.code == 2
    assert 'unrecognized arguments: -nhiden' in capsys.readouterr().err


def test_vae_vanilla_refuses_importance_samples(capsys):
    with pytest.raises(SystemExit):
        vae_vanilla.main(['-iw_samples', '5'])
    assert 'needs -iw_samples 1' in capsys.readouterr().err


@pytest.mark.parametrize('entry,flag,expected', [
    ('iw_vae', [], True),
    ('iw_vae', ['-batch_norm', 'False'], False),
    ('iw_vae', ['-batch_norm', 'false'], False),
    ('vae_vanilla', [], False),
    ('vae_vanilla', ['-batch_norm', 'True'], True),
    ('vimco', [], False),
    ('vimco', ['-batch_norm', 'true'], True),
])
def test_batch_norm_flag_decides_whether_the_model_normalises(
        entry, flag, expected, monkeypatch):
    built = record_models(monkeypatch, stop=True)
    # The model is built before any compiling; blank images will do.
    blank = (np.zeros((10, 784)), np.zeros((10, 784)), False)
    for module in (vae_training, vimco_module):
        monkeypatch.setattr(module, 'load_data', lambda args: blank)
    with pytest.raises(Stop):
        ENTRY_POINTS[entry](flag)
    assert bool(built[0].normalize_layers()) is expected


@pytest.mark.parametrize('entry,flag,fixed', [
    ('iw_vae', ['-dataset', 'fixed'], True),
    ('iw_vae', ['-dataset', 'sample'], False),
    ('vae_vanilla', [], True),
    ('vae_vanilla', ['-dataset', 'sample'], False),
    ('vimco', ['-dataset', 'fixed'], True),
])
def test_dataset_flag_is_honoured_even_when_given_explicitly(
        entry, flag, fixed, monkeypatch):
    # The original compared strings with `is`, so an explicit -dataset
    # could fall into the wrong branch.
    loaded = []

    def load_and_stop(args):
        loaded.append(cached_load_data(args))
        raise Stop()
    monkeypatch.setattr(vae_training, 'load_data', load_and_stop)
    monkeypatch.setattr(vimco_module, 'load_data', load_and_stop)
    with pytest.raises(Stop):
        ENTRY_POINTS[entry](flag + ['--train-subset', '20',
                                    '--data-dir', data_dir()])
    x_train, _, binarise_each_epoch = loaded[0]
    assert binarise_each_epoch is not fixed
    if fixed:
        np.testing.assert_array_equal(x_train,
                                      larochelle_training_images()[:20])
    else:
        # Grey levels, binarised afresh every epoch.
        assert len(np.unique(x_train)) > 2


# -- the flow model's importance weight ---------------------------------

@pytest.mark.parametrize('flow', ['planar', 'radial', 'iaf'])
def test_flow_importance_weight_matches_numpy(flow):
    """log w = log p(x|z_K) + log p(z_K) - log q0(z_0|x) + sum_k logdet_k,
    recomputed in numpy from the layers' outputs at a given z_0."""
    lasagne.random.set_rng(np.random.RandomState(6))
    model = VariationalAutoencoder(8, (6,), 3, T.tanh, T.tanh, flow=flow,
                                   num_flows=2, iaf_hidden=5)
    batch, count = 2, 4
    z0 = T.matrix('z0')
    at_z0 = {model.l_z0: z0}
    terms = model.terms(inputs=at_z0)
    layers = [model.l_mu, model.l_log_var, model.l_z, model.l_x_mu] + \
        model.l_logdets
    outputs = theano.function(
        [model.x, z0], [terms['log_w'].flatten(), terms['log_qz'].flatten()]
        + lasagne.layers.get_output(layers, at_z0),
        givens=[(model.eq, np.int32(1)), (model.iw, np.int32(count))])
    rng = np.random.RandomState(7)
    x = floatx(rng.uniform(size=(batch, 8)) < 0.5)
    z0_value = floatx(rng.normal(size=(batch * count, 3)))
    log_w, log_qz, mu, log_var, zk, x_mu, *logdets = outputs(x, z0_value)

    # Rows are batch-major: sample i of example b is row b * K + i.
    mu, log_var = np.repeat(mu, count, 0), np.repeat(log_var, count, 0)
    log_q0 = np.sum(-0.5 * (np.log(2 * np.pi) + log_var +
                            (z0_value - mu) ** 2 / np.exp(log_var)), -1)
    log_pzk = np.sum(-0.5 * (np.log(2 * np.pi) + zk ** 2), -1)
    x_mu = np.clip(x_mu, 1e-6, 1 - 1e-6)
    per_row_x = np.repeat(x, count, 0)
    log_px = np.sum(per_row_x * np.log(x_mu) +
                    (1 - per_row_x) * np.log(1 - x_mu), -1)
    sum_logdet = np.sum(logdets, axis=0)
    assert np.all(np.abs(sum_logdet) > 1e-4)     # the flows do something
    assert not np.allclose(zk, z0_value)
    np.testing.assert_allclose(log_qz, log_q0 - sum_logdet, rtol=RTOL)
    np.testing.assert_allclose(log_w, log_px + log_pzk - log_q0 + sum_logdet,
                               rtol=RTOL)


@pytest.mark.parametrize('make_parser', [
    lambda: vae_argument_parser('VAE'),
    lambda: vae_argument_parser('VIMCO', binary_latents=True)])
def test_help_documents_every_flag(make_parser):
    for action in make_parser()._actions:
        assert action.help, action.dest
