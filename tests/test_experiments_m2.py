"""The M2 trainer (parmesan.experiments.m2, examples/m2.py): the exact M2
bounds against numpy on a tiny model, flags, short runs of every model on a
slice of real MNIST, and resume."""
import json
import os

import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import (ConcatLayer, DenseLayer, FeaturePoolLayer,
                            InputLayer, get_all_layers)
from scipy.special import log_softmax, logsumexp

from parmesan.layers import (ClipLayer, DropoutCorruptionLayer,
                             NormalizeLayer, ScaleAndShiftLayer)
from parmesan.experiments.m2 import (MODELS, M2Model, logged_bounds,
                                     m2_argument_parser, run)
from conftest import RTOL, floatx

# The tiny model: 6 pixels, 3 classes, 2 latent units.
D, K, LATENT, BATCH = 6, 3, 2, 5


# ------------------------------------------------------------ numpy reference

def numpy_forward(top, inputs, batch_stats):
    """Evaluate a Lasagne stack in numpy, layer by layer.

    `inputs` maps InputLayers to arrays; `batch_stats` selects batch
    normalisation with the statistics of the batch (training) rather than
    the stored ones (evaluation).
    """
    values = {}
    for layer in get_all_layers(top):
        if isinstance(layer, InputLayer):
            values[layer] = inputs[layer]
            continue
        if isinstance(layer, ConcatLayer):
            values[layer] = np.concatenate(
                [values[l] for l in layer.input_layers], axis=1)
            continue
        x = values[layer.input_layer]
        if isinstance(layer, DropoutCorruptionLayer):
            assert layer.p == 0
            out = x
        elif isinstance(layer, DenseLayer):
            out = x.dot(layer.W.get_value())
            if layer.b is not None:
                out = out + layer.b.get_value()
            assert layer.nonlinearity(T.scalar()).owner is None  # identity
        elif isinstance(layer, NormalizeLayer):
            if batch_stats:
                mean, var = x.mean(0), x.var(0)
            else:
                mean, var = layer.mean.get_value(), layer.var.get_value()
            out = (x - mean) / np.sqrt(var + layer.epsilon)
        elif isinstance(layer, ScaleAndShiftLayer):
            out = x * layer.gamma.get_value() + layer.beta.get_value()
        elif isinstance(layer, FeaturePoolLayer):
            # vae_ssl's maxout: max over the strided slices h[:, i::stride].
            stride = layer.pool_size
            out = np.max([x[:, i::stride] for i in range(stride)], axis=0)
        elif isinstance(layer, ClipLayer):
            out = np.clip(x, -layer.bound, layer.bound)
        else:
            raise TypeError('no numpy reference for %r' % layer)
        values[layer] = out
    return values[top]


def numpy_conditional(model, x, hx, y, eps, batch_stats):
    """nll(x | y, z) and the per-unit KL of q(z | x, y), z = mu + sd * eps."""
    inputs = {model.l_qz_h: hx, model.l_qz_y: y}
    mu = numpy_forward(model.l_mu, inputs, batch_stats)
    log_var = numpy_forward(model.l_log_var, inputs, batch_stats)
    z = mu + np.exp(0.5 * log_var) * eps
    logits = numpy_forward(model.l_x_logits,
                           {model.l_px_y: y, model.l_px_z: z}, batch_stats)
    log_p1, log_p0 = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
    nll = -(x * log_p1 + (1 - x) * log_p0).sum(1)
    kl_units = 0.5 * (mu ** 2 + np.exp(log_var) - 1 - log_var)
    return nll, kl_units


def numpy_bounds(model, x, labels, eps_labelled, eps_unlabelled,
                 batch_stats):
    """Kingma et al.'s M2 bounds, written out from the paper:
    L(x, y) = nll + KL_z + log K and
    U(x) = sum_y q(y|x) (nll_y + KL_z,y) + sum_y q log q + log K."""
    one_hot = np.eye(K)[labels]
    hx = numpy_forward(model.l_hx, {model.l_x: x}, batch_stats)
    logits = numpy_forward(model.l_logits, {model.l_x: x}, batch_stats)
    nll, kl_units = numpy_conditional(model, x, hx, one_hot, eps_labelled,
                                      batch_stats)
    labelled = nll + kl_units.sum(1) + np.log(K)
    # The enumeration of classes as one batch of K * B rows: the batch
    # statistics of q(z|x,y) are those of the whole enumeration.
    tiled_y = np.repeat(np.eye(K), len(x), axis=0)
    nll_c, kl_c = numpy_conditional(model, np.tile(x, (K, 1)),
                                    np.tile(hx, (K, 1)), tiled_y,
                                    eps_unlabelled, batch_stats)
    nll_c = nll_c.reshape(K, len(x)).T
    kl_units_c = kl_c.reshape(K, len(x), LATENT)
    q = np.exp(log_softmax(logits, axis=1))
    kl_y = (q * log_softmax(logits, axis=1)).sum(1) + np.log(K)
    expected_kl_z = (q * kl_units_c.sum(2).T).sum(1)
    expected_nll = (q * nll_c).sum(1)
    return dict(labelled=labelled, unlabelled=expected_nll + expected_kl_z +
                kl_y, kl_y=kl_y, kl_z=expected_kl_z, nll_x=expected_nll,
                kl_units=np.einsum('bk,kbu->bu', q, kl_units_c),
                labelled_nll=nll, labelled_kl=kl_units.sum(1))


def tiny_model(kind, **kwargs):
    import lasagne
    lasagne.random.set_rng(np.random.RandomState(7))
    model = M2Model(kind, num_features=D, num_classes=K, num_latent=LATENT,
                    q_hidden=4, q_layers=2, alpha_layers=1, z_layers=1,
                    p_hidden=3, p_layers=1, maxout_stride=2,
                    input_dropout=0.0, init_range=0.8, logit_clip=0.6,
                    z_noise=0.0, **kwargs)
    rng = np.random.RandomState(3)
    for layer in model.normalize_layers():
        size = layer.mean.get_value().shape
        layer.mean.set_value(floatx(rng.randn(*size) * 0.3))
        layer.var.set_value(floatx(rng.uniform(0.5, 2.0, size)))
    return model


def tiny_data():
    rng = np.random.RandomState(4)
    return dict(x=floatx(rng.rand(BATCH, D) > 0.5),
                labels=rng.randint(0, K, BATCH),
                eps_l=floatx(rng.randn(BATCH, LATENT)),
                eps_u=floatx(rng.randn(K * BATCH, LATENT)))


@pytest.fixture(scope='module')
def tiny_exact():
    """A tiny ExactM2 with random stored BN statistics, one compiled
    function of its bound terms in both BN modes, and fixed data and noise.
    """
    model = tiny_model('ExactM2')
    x, y = T.matrix('x'), T.matrix('y')
    eps_l, eps_u = T.matrix('eps_l'), T.matrix('eps_u')
    outputs = []
    for batch_stats in (False, True):
        labelled = model.labelled_terms(x, y, eps_l,
                                        deterministic=not batch_stats)
        unlabelled = model.unlabelled_terms(x, eps_u,
                                            deterministic=not batch_stats)
        outputs += [labelled['bound'], labelled['nll_x'], labelled['kl_z'],
                    unlabelled['bound'], unlabelled['kl_y'],
                    unlabelled['kl_z'], unlabelled['nll_x'],
                    unlabelled['kl_units']]
    compiled = theano.function([x, y, eps_l, eps_u], outputs)

    def terms(batch_stats, *inputs):
        values = compiled(*inputs)
        return values[8:] if batch_stats else values[:8]
    functions = {mode: (lambda *a, mode=mode: terms(mode, *a))
                 for mode in (False, True)}
    return model, functions, tiny_data()


@pytest.mark.parametrize('batch_stats', [False, True],
                         ids=['stored-stats', 'batch-stats'])
def test_exact_m2_bounds_match_numpy(tiny_exact, batch_stats):
    model, functions, d = tiny_exact
    got = functions[batch_stats](d['x'], floatx(np.eye(K)[d['labels']]),
                                 d['eps_l'], d['eps_u'])
    want = numpy_bounds(model, d['x'], d['labels'], d['eps_l'], d['eps_u'],
                        batch_stats)
    (labelled, labelled_nll, labelled_kl, unlabelled, kl_y, kl_z, nll_x,
     kl_units) = got
    np.testing.assert_allclose(labelled, want['labelled'], rtol=RTOL)
    np.testing.assert_allclose(labelled_nll, want['labelled_nll'], rtol=RTOL)
    np.testing.assert_allclose(labelled_kl, want['labelled_kl'], rtol=RTOL)
    np.testing.assert_allclose(unlabelled, want['unlabelled'], rtol=RTOL)
    np.testing.assert_allclose(kl_y, want['kl_y'], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(kl_z, want['kl_z'], rtol=RTOL)
    np.testing.assert_allclose(nll_x, want['nll_x'], rtol=RTOL)
    np.testing.assert_allclose(kl_units, want['kl_units'], rtol=RTOL)
    # The clip of the logits is active somewhere, so it is tested too.
    logits = numpy_forward(model.l_logits.input_layer, {model.l_x: d['x']},
                           batch_stats)
    assert np.abs(logits).max() > model.l_logits.bound


def test_exact_m2_counts_kl_z_once_and_log_k_once(tiny_exact):
    model, functions, d = tiny_exact
    (labelled, labelled_nll, labelled_kl, unlabelled, kl_y, kl_z, nll_x,
     _) = functions[False](d['x'], floatx(np.eye(K)[d['labels']]),
                           d['eps_l'], d['eps_u'])
    # U = E_q[nll] + E_q[KL_z] + KL(q(y|x) || uniform): KL_z enters once.
    np.testing.assert_allclose(unlabelled - nll_x - kl_y, kl_z, rtol=RTOL)
    assert np.all(kl_z > 1e-3)   # so a doubled KL_z would be visible
    twice = numpy_bounds(model, d['x'], d['labels'], d['eps_l'],
                         d['eps_u'], False)
    assert np.all(np.abs(unlabelled - (twice['unlabelled'] + twice['kl_z']))
                  > 1e-3)
    # L(x, y) = nll + KL_z - log p(y), with -log p(y) = log K.
    np.testing.assert_allclose(labelled - labelled_nll - labelled_kl,
                               np.log(K), rtol=RTOL)
    assert np.all(kl_y >= -1e-12)


def test_exact_m2_bound_is_a_bound_on_log_px_by_enumeration(tiny_exact):
    """-U(x) <= log p(x) = logsumexp_y log p(x, y) on average, the joint
    estimated by the labelled bounds -L(x, y) of every class."""
    model, functions, d = tiny_exact
    x = d['x']
    per_class = []
    for c in range(K):
        per_class.append(-functions[False](
            x, floatx(np.eye(K)[np.full(BATCH, c)]), d['eps_u'][
                c * BATCH:(c + 1) * BATCH], d['eps_u'])[0])
    unlabelled = functions[False](x, floatx(np.eye(K)[d['labels']]),
                                  d['eps_l'], d['eps_u'])[3]
    # With the same noise, -U = E_q[-L(x, y)] + H(q) <= logsumexp_y -L(x, y).
    log_px = logsumexp(np.array(per_class), axis=0)
    assert np.all(-unlabelled <= log_px + 1e-9)


@pytest.mark.parametrize('kind', ['GumbelSoftmaxM2', 'STGumbelSoftmaxM2',
                                  'LogisticNormalM2', 'STLogisticNormalM2'])
def test_relaxed_unlabelled_bound_matches_numpy_at_the_sampled_y(kind):
    """nll(x, y~) + KL_z(x, y~) + KL(q(y|x) || U) at the model's own sample
    y~ (stored BN statistics); straight-through samples are one-hot."""
    model = tiny_model(kind, temperature=0.5)
    d = tiny_data()
    x = T.matrix('x')
    eps = T.matrix('eps')
    terms = model.unlabelled_terms(x, eps, deterministic=True)
    bound, kl_y, y = theano.function(
        [x, eps], [terms['bound'], terms['kl_y'], terms['y']])(
        d['x'], d['eps_l'])
    np.testing.assert_allclose(y.sum(1), 1, rtol=RTOL)
    if kind.startswith('ST'):
        np.testing.assert_array_equal(np.sort(y, axis=1)[:, :-1], 0)
        np.testing.assert_array_equal(y.max(1), 1)
    else:
        assert np.all(y.max(1) < 1)
    hx = numpy_forward(model.l_hx, {model.l_x: d['x']}, False)
    logits = numpy_forward(model.l_logits, {model.l_x: d['x']}, False)
    nll, kl_units = numpy_conditional(model, d['x'], hx, y, d['eps_l'],
                                      False)
    log_q = log_softmax(logits, axis=1)
    want_kl_y = (np.exp(log_q) * log_q).sum(1) + np.log(K)
    np.testing.assert_allclose(kl_y, want_kl_y, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(bound, nll + kl_units.sum(1) + want_kl_y,
                               rtol=RTOL)


# ------------------------------------------------------------ schedules etc.

@pytest.mark.parametrize('text,value', [('False', False), ('false', False),
                                        ('0', False), ('True', True),
                                        ('1', True)])
def test_boolean_flags_parse_false_as_false(text, value):
    args = m2_argument_parser().parse_args(['-bn', text])
    assert args.bn is value


def test_bad_boolean_and_defaults():
    parser = m2_argument_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(['-bn', 'maybe'])
    args = parser.parse_args([])
    assert (args.model, args.ds, args.lr, args.cw, args.anneal_cw,
            args.sharpening, args.batch_size, args.nepochs, args.nlpc, args.seed,
            args.eval_epoch, args.bn, args.idrop, args.rv, args.qh,
            args.ql, args.ph, args.pl, args.mstride) == (
        'ExactM2', 50, 5e-4, 128.0, 50000, 3.0, 100, 300, 10, 1, 10, True,
        0.25, 0.1, 300, 4, 200, 4, 4)
    assert parser.parse_args(['-efreq', '5']).eval_epoch == 5


def test_help_documents_every_flag():
    parser = m2_argument_parser()
    for action in parser._actions:
        assert action.help, action.dest


def test_full_size_model_has_vae_ssl_architecture():
    import lasagne
    lasagne.random.set_rng(np.random.RandomState(0))
    model = M2Model('GumbelSoftmaxM2')
    shapes = [p.get_value().shape for p in model.params(trainable=True)]
    # Weight matrices; batch norm's beta and gamma are (1, units).
    dense = [s for s in shapes if len(s) == 2 and s[0] > 1]
    # h(x): 784 -> 4x(4*300) maxout; logits: 2x(4*300) -> 10;
    # q(z): y -> 300, [300+300] -> 2x(4*300) -> 50, 50;
    # p: [10+50] -> 4x(4*200) -> 784.
    assert sorted(dense) == sorted(
        [(784, 1200), (300, 1200), (300, 1200), (300, 1200),
         (300, 1200), (300, 1200), (300, 10), (10, 300),
         (600, 1200), (300, 1200), (300, 50), (300, 50),
         (60, 800), (200, 800), (200, 800), (200, 800), (200, 784)])
    bn = model.normalize_layers()
    assert len(bn) == 8 and all(l.epsilon == 1e-3 for l in bn)
    # U(-0.1, 0.1) for everything, batch-norm scales and shifts included.
    values = np.concatenate([p.get_value().ravel()
                             for p in model.params(trainable=True)])
    assert np.abs(values).max() <= 0.1
    assert values.std() == pytest.approx(0.2 / np.sqrt(12), rel=0.01)
    assert len(values) == sum(np.prod(s) for s in shapes)


# ------------------------------------------------------------ short runs

#: A slice of MNIST and tiny widths; 10 iterations of 50 + 50 per epoch.
TINY = ['--train-subset', '500', '--eval-subset', '500', '-eval_epoch', '1',
        '-qh', '16', '-ph', '16', '-ds', '4', '-ql', '1', '-al', '1',
        '-zl', '1', '-pl', '1', '-bs', '50']


def short_run(tmpdir, model, data_dir, extra=()):
    folder = str(tmpdir.join(model))
    results = run(['-model', model, '-outfolder', folder, '--data-dir',
                   data_dir, '-ep', '2'] + TINY + list(extra))
    return folder, results


def check_run(folder, results, model):
    for name in ('log.txt', 'log.jsonl', 'checkpoint.npz', 'results.json',
                 'curves.png', 'accuracy.png'):
        assert os.path.getsize(os.path.join(folder, name)) > 0, name
    if model != 'MLP':
        for name in ('samples.png', 'latent_kl.png'):
            assert os.path.getsize(os.path.join(folder, name)) > 0, name
    with open(os.path.join(folder, 'log.jsonl')) as stream:
        rows = [json.loads(line) for line in stream]
    assert [row['epoch'] for row in rows] == [1, 2]
    assert all('valid_acc' in row for row in rows)
    if model == 'MLP':
        assert rows[1]['train_ce'] < rows[0]['train_ce'], rows
    else:
        # Logged as lower bounds (negative, nats), like the VAE trainers.
        for row in rows:
            assert row['train_bound_unlabelled'] < 0
            assert row['valid_bound_unlabelled'] < 0
            assert 'train_boundU' not in row
        assert rows[1]['train_bound_unlabelled'] > \
            rows[0]['train_bound_unlabelled'], rows
    assert results['epochs'] == 2 and results['num_labels'] == 100
    assert 0 <= results['test_acc'] <= 1
    with open(os.path.join(folder, 'results.json')) as stream:
        assert json.load(stream)['model'] == model


@pytest.mark.parametrize('model', ['ExactM2', 'MLP'])
def test_short_run(tmpdir, shared_data_dir, model):
    folder, results = short_run(tmpdir, model, shared_data_dir)
    check_run(folder, results, model)


@pytest.mark.slow
@pytest.mark.parametrize('model', ['GumbelSoftmaxM2', 'STGumbelSoftmaxM2',
                                   'LogisticNormalM2', 'STLogisticNormalM2'])
def test_short_run_slow(tmpdir, shared_data_dir, model):
    folder, results = short_run(tmpdir, model, shared_data_dir)
    check_run(folder, results, model)


@pytest.mark.slow
def test_resume_continues_exactly(tmpdir, shared_data_dir):
    """2 epochs in one go equal 1 epoch, then --resume to 2; the annealing
    counter, noise streams and data order are all in the checkpoint."""
    common = ['-model', 'GumbelSoftmaxM2', '--data-dir',
              shared_data_dir] + TINY + ['--checkpoint-every', '1',
                                         '-ancw', '7',
                                         '-annealSharpening', '7']
    straight = str(tmpdir.join('straight'))
    run(common + ['-ep', '2', '-outfolder', straight])
    split = str(tmpdir.join('split'))
    run(common + ['-ep', '1', '-outfolder', split])
    run(common + ['-ep', '2', '-outfolder', split, '--resume'])
    rows = {}
    for name, folder in (('straight', straight), ('split', split)):
        with open(os.path.join(folder, 'log.jsonl')) as stream:
            rows[name] = [json.loads(line) for line in stream]
    for a, b in zip(rows['straight'], rows['split']):
        for key in a:
            if key != 'seconds':
                assert a[key] == pytest.approx(b[key], rel=1e-9), key
    # The annealing moved: 2 epochs of 10 iterations over N = 7.
    assert rows['split'][0]['sharpening'] == pytest.approx(3.0)
    assert rows['split'][0]['a_cw'] == 1.0


def test_old_logs_read_with_the_bounds_logged_now():
    old = {'epoch': 3, 'train_boundU': 101.5, 'train_boundL': 99.0,
           'valid_boundU': None, 'valid_acc': 0.9}
    assert logged_bounds(old) == {
        'epoch': 3, 'train_bound_unlabelled': -101.5,
        'train_bound_labelled': -99.0, 'valid_bound_unlabelled': None,
        'valid_acc': 0.9}
    new = {'epoch': 4, 'train_bound_unlabelled': -100.0}
    assert logged_bounds(new) == new


def test_models_tuple_is_the_issue_list():
    assert MODELS == ('ExactM2', 'GumbelSoftmaxM2', 'STGumbelSoftmaxM2',
                      'LogisticNormalM2', 'STLogisticNormalM2', 'MLP')


@pytest.mark.parametrize('batch_norm', [True, False])
def test_factored_enumeration_computes_the_tiled_graph(batch_norm,
                                                       monkeypatch):
    """ExactM2's first q(z|x,y) layer computed once per class and once per
    example gives the tiled graph's bound and gradients (training mode:
    batch statistics over the whole enumeration)."""
    from parmesan import ops
    d = tiny_data()
    x, eps = T.matrix('x'), T.matrix('eps')
    found = {}
    for factored in (True, False):
        monkeypatch.setattr(ops.config, 'factored_enumeration', factored)
        model = tiny_model('ExactM2', batch_norm=batch_norm)
        hx, logits = model.classify(x)
        bound = model.exact_unlabelled_terms(x, hx, logits, eps)['bound']
        params = model.params(trainable=True)
        f = theano.function([x, eps], [bound] + T.grad(bound.sum(), params))
        found[factored] = f(d['x'], d['eps_u'])
    assert model.l_qz_first is not None
    for a, b in zip(found[True], found[False]):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL)
