"""Saved runs (parmesan.experiments.runs): the run folder's config.json,
--resume's check of the settings, checkpoints by name, load_run and the
evaluate command, on one tiny IWAE run (and, marked slow, tiny M2 and
ladder runs) checked against the runs' own numbers and a numpy
re-implementation of the model."""
import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sysconfig

import numpy as np
import pytest
import scipy.special
import scipy.stats
import theano

from conftest import data_dir, readme_python_block
from parmesan import datasets
from parmesan.experiments import load_run
from parmesan.experiments import __main__ as command
from parmesan.experiments import ladder, m2, vae
from parmesan.experiments.cli import RESUMABLE_SETTINGS

TINY_IWAE = ['--train-subset', '200', '-nepochs', '1', '--eval-subset', '20',
             '--eval-iw', '3', '--final-iw', '3', '-nhidden', '10',
             '-nlatent', '3', '--num-layers', '1', '-batch_size', '50',
             '-iw_samples', '2', '--seed', '5']


@pytest.fixture(scope='module')
def iwae_run(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('runs') / 'iwae')
    argv = TINY_IWAE + ['--data-dir', data_dir(), '-outfolder', folder]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        results = vae.run(argv)
    final_line = output.getvalue().strip().splitlines()[-1]
    return folder, argv, results, final_line


def read_json(folder, name):
    with open(os.path.join(folder, name)) as stream:
        return json.load(stream)


# -- config.json and --resume --------------------------------------------


def test_the_config_records_settings_trainer_seed_and_versions(iwae_run):
    folder, argv, _, _ = iwae_run
    config = read_json(folder, 'config.json')
    assert config['trainer'] == 'iw_vae' and config['seed'] == 5
    assert config['argv'] == argv and ' '.join(argv) in config['command']
    assert config['settings']['nhidden'] == 10
    assert config['settings']['nonlin_enc'] == 'rectify'
    assert config['versions']['numpy'] == np.__version__
    assert config['versions']['theano'] == theano.__version__
    assert config['versions']['floatX'] == theano.config.floatX


def test_resume_refuses_changed_settings_naming_old_and_new(
        iwae_run, capsys, monkeypatch):
    folder, argv, _, _ = iwae_run
    changed = argv + ['--resume', '-nonlin_enc', 'tanh', '-nhidden', '12']

    def refuse(*args, **kwargs):
        raise AssertionError('loaded or compiled before the check')
    for name in ('load_mnist_realval', 'load_mnist_dynamic',
                 'load_mnist_binarized'):
        monkeypatch.setattr(datasets, name, refuse)
    monkeypatch.setattr(theano, 'function', refuse)
    with pytest.raises(SystemExit) as stop:
        vae.run(changed)
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert '-nonlin_enc was "rectify", now "tanh"' in error
    assert '-nhidden was 10, now 12' in error
    assert '-batch_size' not in error.split('only ')[0]


def test_resume_accepts_a_longer_budget_and_other_folders(iwae_run,
                                                          tmp_path):
    folder, argv, _, _ = iwae_run
    args, _ = vae.parse_run_args(argv + ['--resume', '-nepochs', '3',
                                         '--max-minutes', '5',
                                         '--checkpoint-every', '2'])
    assert args.nepochs == 3
    assert {'nepochs', 'max_minutes', 'checkpoint_every', 'data_dir',
            'outfolder', 'eval_epoch'} <= RESUMABLE_SETTINGS


def test_a_run_without_config_resumes_with_a_warning(iwae_run, tmp_path,
                                                     capsys):
    folder, argv, _, _ = iwae_run
    older = str(tmp_path / 'older')
    os.makedirs(older)
    shutil.copy(os.path.join(folder, 'checkpoint.npz'), older)
    vae.parse_run_args(argv[:-2] + ['-outfolder', older, '--resume'])
    assert 'has no config.json' in capsys.readouterr().err


def test_the_final_line_says_what_was_evaluated_on_what(iwae_run):
    _, _, results, line = iwae_run
    assert line.startswith('test L_3 = %.2f +- %.2f nats on all 10000 test '
                           'images (binarised once, seed 1234), 3 importance '
                           'samples' % (results['test_LL'],
                                        results['test_LL_stderr'])), line
    assert results['test_images'] == 10000


# -- checkpoints by name ---------------------------------------------------


def test_the_checkpoint_names_every_variable_and_holds_no_noise(iwae_run):
    folder, _, _, _ = iwae_run
    path = os.path.join(folder, 'checkpoint.npz')
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files if key != 'meta'}
        names = json.loads(str(stored['meta']))['names']
    assert sorted(names) == sorted(arrays)
    for name in ('l_mu/W', 'l_mu/b', 'l_x_logits/W', 'l_log_var/b',
                 'layer02_NormalizeLayer/mean', 'lr', 'optimizer/adam_step',
                 'l_x_logits/W/adam_m', 'l_x_logits/W/adam_v'):
        assert name in arrays, name
    assert arrays['l_mu/W'].shape == (10, 3)
    assert arrays['l_x_logits/W/adam_v'].shape == (10, 784)
    assert np.all(arrays['l_x_logits/W/adam_v'] >= 0)
    # Adam's step count after one epoch of 200 images in batches of 50.
    assert float(arrays['optimizer/adam_step']) == 4
    assert not [name for name in names if 'noise' in name or
                name.startswith('var0')]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


# -- load_run against the run and against numpy ---------------------------


def numpy_iwae(arrays):
    """The tiny IWAE (one hidden layer with batch norm, rectify) in numpy,
    from the checkpoint's arrays: (posterior moments, decoder logits)."""
    def hidden(x, dense, normalize, scale):
        a = x.dot(arrays[dense + '/W'])
        a = (a - arrays[normalize + '/mean']) / np.sqrt(
            arrays[normalize + '/var'] + 1e-10)
        return np.maximum(a * arrays[scale + '/gamma'] +
                          arrays[scale + '/beta'], 0)

    def encode(x):
        h = hidden(x, 'layer01_DenseLayer', 'layer02_NormalizeLayer',
                   'layer03_ScaleAndShiftLayer')
        return (h.dot(arrays['l_mu/W']) + arrays['l_mu/b'],
                h.dot(arrays['l_log_var/W']) + arrays['l_log_var/b'])

    def decode_logits(z):
        h = hidden(z, 'layer08_DenseLayer', 'layer09_NormalizeLayer',
                   'layer10_ScaleAndShiftLayer')
        return h.dot(arrays['l_x_logits/W']) + arrays['l_x_logits/b']
    return encode, decode_logits


def numpy_log_likelihood(arrays, x, k, rng):
    """L_k of each image by Burda et al.'s formula, with numpy draws."""
    encode, decode_logits = numpy_iwae(arrays)
    mu, log_var = encode(x)
    result = []
    for image, m, lv in zip(x, mu, log_var):
        std = np.exp(0.5 * lv)
        z = m + std * rng.standard_normal((k, len(m)))
        logits = decode_logits(z)
        log_px_z = np.sum(image * logits - np.logaddexp(0, logits), axis=1)
        log_pz = scipy.stats.norm.logpdf(z).sum(axis=1)
        log_qz = scipy.stats.norm.logpdf(z, m, std).sum(axis=1)
        result.append(scipy.special.logsumexp(log_px_z + log_pz - log_qz) -
                      np.log(k))
    return np.array(result)


@pytest.fixture(scope='module')
def loaded(iwae_run):
    folder, _, _, _ = iwae_run
    saved = load_run(folder)
    with np.load(os.path.join(folder, 'checkpoint.npz')) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return saved, arrays, saved.test_data()[0]


def test_log_likelihood_repeats_the_runs_own_test_LL(iwae_run, loaded):
    _, _, results, _ = iwae_run
    saved, _, x_test = loaded
    assert saved.trainer == 'iw_vae' and saved.epoch == 1
    assert len(x_test) == 10000
    # Same images, same k, evaluation noise seeded identically: equal.
    ll = saved.log_likelihood(x_test, k=3, show_progress=False)
    np.testing.assert_allclose(ll.mean(), results['test_LL'], rtol=1e-12)


def test_the_loaded_model_is_the_numpy_model_of_its_weights(loaded):
    saved, arrays, x_test = loaded
    encode, decode_logits = numpy_iwae(arrays)
    x = x_test[:100]
    np.testing.assert_allclose(saved.encode(x), encode(x)[0], rtol=1e-7,
                               atol=1e-10)
    z = np.random.RandomState(3).randn(6, 3)
    np.testing.assert_allclose(saved.sample(6, seed=3),
                               scipy.special.expit(decode_logits(z)),
                               rtol=1e-7, atol=1e-12)
    k = 40
    ours = saved.log_likelihood(x, k=k, show_progress=False)
    reference = numpy_log_likelihood(arrays, x, k, np.random.RandomState(7))
    # Two Monte-Carlo estimates of the same L_k per image: their paired
    # difference averages to zero within its standard error.
    difference = ours - reference
    stderr = difference.std(ddof=1) / np.sqrt(len(difference))
    assert abs(difference.mean()) < 4 * stderr
    assert np.all(ours < 0) and abs(ours.mean() - reference.mean()) < 2


def test_reconstructions_are_bernoulli_means_of_the_right_shape(loaded):
    saved, _, x_test = loaded
    again = saved.reconstruct(x_test[:7])
    assert again.shape == (7, 784)
    assert np.all((again > 0) & (again < 1))
    # Reseeded per call: the same z, the same reconstruction.
    np.testing.assert_array_equal(again, saved.reconstruct(x_test[:7]))
    with pytest.raises(TypeError, match='no classifier'):
        saved.predict(x_test[:2])


def test_a_checkpoint_of_other_settings_lists_what_differs(iwae_run,
                                                          tmp_path):
    folder, _, _, _ = iwae_run
    wider = str(tmp_path / 'wider')
    shutil.copytree(folder, wider)
    config = read_json(wider, 'config.json')
    config['settings']['nlatent'] = 4
    with open(os.path.join(wider, 'config.json'), 'w') as stream:
        json.dump(config, stream)
    with pytest.raises(ValueError, match=r'shapes differ: l_log_var/W '
                       r'\(checkpoint \(10, 3\), model \(10, 4\)\)'):
        load_run(wider)


def test_the_readme_uses_a_saved_run_as_printed(iwae_run, loaded):
    folder, _, _, _ = iwae_run
    saved, _, x_test = loaded
    code = readme_python_block('Using a trained run')
    assert "load_run('results/burda_k5')" in code
    output = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(output):
        exec(code.replace('results/burda_k5', folder), namespace)
    assert namespace['images'].shape == (16, 784)
    assert namespace['codes'].shape == (10, 3)
    assert namespace['again'].shape == (10, 784)
    ll = namespace['ll']
    assert ll.shape == (100,) and np.all(ll < 0)
    assert output.getvalue().strip() == \
        'L_5000 on 100 test images: %.2f nats' % ll.mean()


# -- the evaluate command ------------------------------------------------


def digest(path):
    with open(path, 'rb') as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def test_evaluate_writes_its_own_file_and_says_what_it_did(iwae_run, loaded,
                                                           capsys):
    folder, _, _, _ = iwae_run
    saved, _, x_test = loaded
    before = digest(os.path.join(folder, 'results.json'))
    result = command.main(['evaluate', folder, '--iw', '4', '--subset',
                           '30'])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert 'test L_4 = ' in line and 'on the first 30 test images' in line
    assert '4 importance samples' in line and 'seed 1234' in line
    written = read_json(folder, 'evaluation_L4_first30.json')
    assert written == json.loads(json.dumps(result))
    np.testing.assert_allclose(written['test_L4'], saved.log_likelihood(
        x_test[:30], k=4, show_progress=False).mean(), rtol=1e-12)
    assert digest(os.path.join(folder, 'results.json')) == before


def test_the_installed_command_evaluates(tmp_path):
    script = os.path.join(sysconfig.get_paths()['scripts'], 'parmesan-train')
    result = subprocess.run([script, 'evaluate', '--help'],
                            cwd=str(tmp_path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: parmesan-train evaluate ')
    for flag in ('--iw', '--subset', '--data-dir', '-o OUTPUT'):
        assert flag in result.stdout


def test_evaluate_refuses_a_folder_that_is_no_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        command.main(['evaluate', str(tmp_path)])
    assert stop.value.code == 2
    assert 'has no config.json' in capsys.readouterr().err


# -- the other trainers (slow: more tiny trainings) -------------------------


@pytest.mark.slow
@pytest.mark.parametrize('trainer, extra', [
    ('vimco', ['-iw_samples', '2', '--prior', 'learned']),
    ('iw_vae_normflow', ['-iw_samples', '2', '-nflows', '2'])])
def test_the_other_vae_trainers_load_and_repeat_their_test_LL(
        trainer, extra, tmp_path, shared_data_dir):
    from parmesan.experiments.trainers import TRAINERS
    folder = str(tmp_path / trainer)
    argv = TINY_IWAE[:TINY_IWAE.index('-iw_samples')] + extra + [
        '--data-dir', shared_data_dir, '-outfolder', folder]
    results = TRAINERS[trainer].run(argv)
    saved = load_run(folder)
    assert saved.trainer == trainer
    x_test, _ = saved.test_data()
    np.testing.assert_allclose(
        saved.log_likelihood(x_test, k=3, show_progress=False).mean(),
        results['test_LL'], rtol=1e-12)
    samples = saved.sample(4)
    assert samples.shape == (4, 784) and np.all((samples > 0) &
                                                (samples < 1))
    assert saved.encode(x_test[:5]).shape == (5, 3)


@pytest.mark.slow
def test_m2_loaded_predicts_the_runs_test_accuracy(tmp_path, capsys,
                                                   shared_data_dir):
    folder = str(tmp_path / 'm2')
    results = m2.run(['--train-subset', '200', '--eval-subset', '100',
                      '-ep', '1', '-qh', '8', '-ph', '8', '-ds', '2', '-ql',
                      '1', '-al', '1', '-zl', '1', '-pl', '1', '-bs', '50',
                      '-model', 'ExactM2', '--data-dir', shared_data_dir,
                      '-outfolder', folder])
    final_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert 'test accuracy %.4f' % results['test_acc'] in final_line
    assert 'on the first 100 test images' in final_line
    saved = load_run(folder)
    x_test, t_test = saved.test_data()
    assert len(x_test) == 100
    assert saved.accuracy(x_test, t_test) == results['test_acc']
    samples = saved.sample(3)
    assert samples.shape == (10, 3, 784)
    result = command.main(['evaluate', folder])
    assert result['test_accuracy'] == results['test_acc']
    assert os.path.exists(os.path.join(folder, 'evaluation_accuracy.json'))


@pytest.mark.slow
def test_ladder_loaded_predicts_the_runs_test_error(tmp_path, capsys,
                                                    shared_data_dir):
    folder = str(tmp_path / 'ladder')
    results = ladder.run(['--layers', '784,20,10', '-lambdas',
                          '1000,10,0.1', '--train-subset', '200',
                          '-nepochs', '1', '--data-dir', shared_data_dir,
                          '-outfolder', folder])
    assert 'on all 10000 test images' in capsys.readouterr().out
    saved = load_run(folder)
    x_test, t_test = saved.test_data()
    probabilities = saved.predict(x_test)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-9)
    error = 100 * np.mean(probabilities.argmax(axis=1) != t_test)
    assert error == pytest.approx(results['test_error'], abs=1e-12)
    with pytest.raises(TypeError, match='no generative model'):
        saved.sample(2)
