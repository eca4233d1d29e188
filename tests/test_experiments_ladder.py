"""The ladder-network trainer (parmesan.experiments.ladder,
examples/mnist_ladder.py): batches, schedule, clean and corrupted paths, batch
statistics and costs against numpy, and a short run on real MNIST."""
import json
import os

import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import get_output

from parmesan import datasets
from parmesan.experiments.ladder import LadderNetwork, run, select_labelled
from conftest import RTOL, floatx

SIZES = (6, 5, 4, 3)
EPSILON = 1e-10


# ---------------------------------------------------------------- batches

def test_select_labelled_is_balanced_and_all_means_every_row():
    labels = np.repeat(np.arange(10), 30)
    chosen = select_labelled(labels, '100', seed=3)
    np.testing.assert_array_equal(np.bincount(labels[chosen]), 10)
    np.testing.assert_array_equal(
        chosen, datasets.select_balanced_labels(labels, 10, 3))
    np.testing.assert_array_equal(select_labelled(labels, 'all', 3),
                                  np.arange(300))
    with pytest.raises(ValueError, match='multiple of the 10 classes'):
        select_labelled(labels, '105', 3)


# ---------------------------------------------------------------- the model

@pytest.fixture(scope='module')
def small_net():
    import lasagne
    lasagne.random.set_rng(np.random.RandomState(42))
    return LadderNetwork(SIZES, noise_std=0.3)


def test_clean_path_has_no_noise(small_net):
    net = small_net
    lateral, _, _, output = net.clean_outputs()
    clean = theano.function([net.x, net.num_labelled], lateral + [output])
    x = floatx(np.random.RandomState(0).rand(20, SIZES[0]))
    first, second = clean(x, 5), clean(x, 5)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[0], x)
    # The corrupted path differs from call to call.
    corrupted = theano.function([net.x, net.num_labelled],
                                net.corrupted_outputs()[1])
    assert not np.allclose(corrupted(x, 5), corrupted(x, 5))


def test_corrupted_path_adds_noise_of_std_0_3_everywhere(small_net):
    net = small_net
    rows = 4000
    for depth, layer in enumerate(net.lateral):
        # Feed zeros into the corruption layer: its output is the noise.
        width = SIZES[depth]
        zeros = T.zeros((rows, width), dtype=theano.config.floatX)
        noise = theano.function([], get_output(
            layer, {layer.input_layer: zeros}))()
        assert abs(noise.mean()) < 0.02, depth
        assert abs(noise.std() - 0.3) < 0.01, depth
        # Independent across units: correlations near 0.
        correlation = np.corrcoef(noise.T)[np.triu_indices(width, 1)]
        assert np.abs(correlation).max() < 0.1, depth


def test_input_noise_in_the_full_graph_has_std_0_3(small_net):
    net = small_net
    corrupted_input = net.corrupted_outputs()[0][0]
    f = theano.function([net.x], corrupted_input - net.x)
    noise = f(floatx(np.random.RandomState(1).rand(3000, SIZES[0])))
    assert abs(noise.std() - 0.3) < 0.01 and abs(noise.mean()) < 0.01


def test_batch_statistics_come_from_the_unlabelled_rows(small_net):
    net = small_net
    lateral, means, variances, _ = net.clean_outputs()
    f = theano.function([net.x, net.num_labelled],
                        [means[0], variances[0], lateral[1]])
    x = np.random.RandomState(2).rand(30, SIZES[0])
    num_labelled = 12
    mean, var, z = f(floatx(x), num_labelled)
    mean, var = np.ravel(mean), np.ravel(var)  # (1, D), as the original
    pre_activation = x.dot(net.encoder_dense[0].W.get_value())
    unlabelled = pre_activation[num_labelled:]
    np.testing.assert_allclose(mean, unlabelled.mean(0), rtol=RTOL * 10)
    np.testing.assert_allclose(var, unlabelled.var(0), rtol=RTOL * 10)
    # Not the statistics of all rows, and the labelled rows are normalised
    # with the unlabelled ones' statistics.
    assert not np.allclose(mean, pre_activation.mean(0), rtol=1e-3)
    np.testing.assert_allclose(
        z, (pre_activation - unlabelled.mean(0)) /
        np.sqrt(unlabelled.var(0) + EPSILON), rtol=RTOL * 10, atol=1e-7)


def test_deterministic_evaluation_uses_statistics_of_all_training_rows():
    import lasagne
    from parmesan.experiments.evaluation import collect_statistics
    lasagne.random.set_rng(np.random.RandomState(8))
    net = LadderNetwork(SIZES, noise_std=0.3)
    evaluation = net.compile_evaluation()
    x = np.random.RandomState(9).rand(40, SIZES[0])
    collect_statistics(evaluation['collect'], floatx(x),
                       net.normalize_layers(), batch_size=10)
    pre_activation = x.dot(net.encoder_dense[0].W.get_value())
    np.testing.assert_allclose(net.normalize_layers()[0].mean.get_value(),
                               pre_activation.mean(0, keepdims=True),
                               rtol=RTOL * 10)
    np.testing.assert_allclose(net.normalize_layers()[0].var.get_value(),
                               pre_activation.var(0, keepdims=True),
                               rtol=RTOL * 10)
    first = evaluation['predict'](floatx(x[:3]))
    np.testing.assert_array_equal(first, evaluation['predict'](floatx(x[:3])))
    np.testing.assert_allclose(first.sum(1), 1, rtol=RTOL)


# ------------------------------------------------- costs against numpy

def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def normalise(a, mean, var):
    return (a - mean) / np.sqrt(var + EPSILON)


def batch_normalise(a):
    return normalise(a, a.mean(0), a.var(0))


def numpy_combinator(kind, u, z, p):
    if kind == 'gauss':
        mu = p['a1'] * sigmoid(p['a2'] * u + p['a3']) + p['a4'] * u + p['a5']
        v = p['a6'] * sigmoid(p['a7'] * u + p['a8']) + p['a9'] * u + \
            p['a10']
        return (z - mu) * v + mu
    zu = z * u
    return (p['a1'] + p['a2'] * z + p['a3'] * u + p['a4'] * zu +
            p['b1'] * sigmoid(p['c1'] + p['c2'] * z + p['c3'] * u +
                              p['c4'] * zu))


def numpy_ladder_costs(net, kind, x, targets, num_labelled, lambdas):
    """Rasmus et al.'s cost without noise (clean = corrupted), float64."""
    value = lambda shared: shared.get_value().astype(np.float64)  # noqa
    top = len(SIZES) - 1
    h, zs, stats = x, [x], []
    for depth in range(1, top + 1):
        pre = h.dot(value(net.encoder_dense[depth - 1].W))
        mean, var = pre[num_labelled:].mean(0), pre[num_labelled:].var(0)
        z = normalise(pre, mean, var)
        zs.append(z)
        stats.append((mean, var))
        shift = net.scale_and_shift[depth - 1]
        if depth == top:
            logits = z * value(shift.gamma) + value(shift.beta)
            e = np.exp(logits - logits.max(1, keepdims=True))
            h = e / e.sum(1, keepdims=True)
        else:
            h = np.maximum(0, z + value(shift.beta))
    labelled = slice(None, num_labelled)
    class_cost = -np.mean(np.log(h[labelled][np.arange(num_labelled),
                                             targets]))
    u = batch_normalise(h[num_labelled:])
    denoise = [None] * (top + 1)
    for depth in range(top, -1, -1):
        layer = net.combinators[depth]
        # Lasagne prefixes parameter names with the layer's: 'g3.a1'.
        params = {p.name.split('.')[-1]: value(p)
                  for p in layer.get_params()}
        z_hat = numpy_combinator(kind, u, zs[depth][num_labelled:], params)
        if depth > 0:
            target = normalise(z_hat, *stats[depth - 1])
            u = batch_normalise(z_hat.dot(value(net.decoder_dense[depth].W)))
        else:
            target = z_hat
        denoise[depth] = np.mean((target - zs[depth][num_labelled:]) ** 2)
    cost = class_cost + sum(w * d for w, d in zip(lambdas, denoise))
    return cost, class_cost, denoise


@pytest.mark.parametrize('kind', ['gauss', 'denoise'])
def test_costs_match_a_numpy_ladder(kind):
    import lasagne
    lasagne.random.set_rng(np.random.RandomState(5))
    net = LadderNetwork(SIZES, noise_std=0., combinator=kind)
    r = np.random.RandomState(6)
    for param in net.params(trainable=True):
        shape = param.get_value().shape
        param.set_value(floatx(param.get_value() + 0.5 * r.randn(*shape)))
    lambdas = (1000., 10., 0.1, 0.5)
    terms = net.training_terms(lambdas)
    f = theano.function([net.x, net.targets, net.num_labelled],
                        list(terms.values()))
    x = r.rand(16, SIZES[0])
    targets = r.randint(0, SIZES[-1], 6).astype(np.int32)
    values = dict(zip(terms.keys(), f(floatx(x), targets, 6)))
    cost, class_cost, denoise = numpy_ladder_costs(net, kind, x, targets, 6,
                                                   lambdas)
    tolerance = dict(rtol=max(RTOL * 10, 1e-7))
    for depth, expected in enumerate(denoise):
        np.testing.assert_allclose(values['denoise%d' % depth], expected,
                                   err_msg='layer %d' % depth, **tolerance)
    np.testing.assert_allclose(values['class_cost'], class_cost, **tolerance)
    np.testing.assert_allclose(values['cost'], cost, **tolerance)


def test_paths_share_their_weights_and_lambdas_are_checked(small_net):
    net = small_net
    trainable = net.params(trainable=True)
    names = [p.name.split('.')[-1] for p in trainable]
    # One W per encoder layer although the graph is used twice; one V per
    # decoder step; beta everywhere, gamma only at the softmax.
    assert names.count('W') == 2 * (len(SIZES) - 1)
    assert names.count('beta') == len(SIZES) - 1
    assert names.count('gamma') == 1
    with pytest.raises(ValueError, match='3 lambdas for 4 layers'):
        net.training_terms((1., 1., 1.))


# ------------------------------------------------------------ a short run

def read_rows(folder):
    with open(os.path.join(folder, 'log.jsonl')) as stream:
        return [json.loads(line) for line in stream]


SMALL_MODEL = ['--layers', '784,50,30,10', '-lambdas', '1000,10,0.1,0.1',
               '--seed', '3']


def test_short_run_learns_and_writes_its_outputs(shared_data_dir, tmp_path):
    folder = str(tmp_path / 'run')
    results = run(SMALL_MODEL + ['--train-subset', '1000', '-nepochs', '3',
                                 '--data-dir', shared_data_dir,
                                 '-outfolder', folder])
    for name in ('log.txt', 'log.jsonl', 'checkpoint.npz', 'results.json',
                 'errors.png', 'costs.png'):
        assert os.path.getsize(os.path.join(folder, name)) > 0, name
    rows = read_rows(folder)
    assert [row['epoch'] for row in rows] == [1, 2, 3]
    assert rows[-1]['train_class_cost'] < rows[0]['train_class_cost']
    assert rows[-1]['train_cost'] < rows[0]['train_cost']
    assert rows[-1]['test_error'] < rows[0]['test_error']
    assert rows[-1]['test_error'] < 80  # chance is 90 %
    with open(os.path.join(folder, 'results.json')) as stream:
        stored = json.load(stream)
    assert stored['test_error'] == results['test_error'] == \
        rows[-1]['test_error']
    # The labelled rows: 10 per class of the first 1000 training images.
    _, t_train, _, _, _, _ = datasets.load_mnist_realval(shared_data_dir)
    expected = datasets.select_balanced_labels(t_train[:1000], 10, 3)
    assert stored['labelled_indices'] == expected.tolist()


@pytest.mark.slow
def test_resume_continues_exactly(shared_data_dir, tmp_path):
    common = SMALL_MODEL + ['--train-subset', '300', '--data-dir',
                            shared_data_dir, '-nepochs', '3',
                            '--decay-start-epoch', '1']
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    run(common + ['-outfolder', straight])
    run(common + ['-outfolder', resumed, '--max-minutes', '0'])
    assert len(read_rows(resumed)) == 1
    run(common + ['-outfolder', resumed, '--resume'])
    for a, b in zip(read_rows(straight), read_rows(resumed)):
        a.pop('seconds'), b.pop('seconds')
        assert a == b
