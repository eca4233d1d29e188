"""The command line every trainer shares: each setting checked before
anything is loaded or compiled, presets beside explicit flags, and the
start of a run (the folder's lock, leftovers of interrupted writes)."""
import argparse
import json
import os

import pytest
import theano

from parmesan import datasets
from parmesan.experiments import cli, ladder, m2, sweep, vae, vimco
from parmesan.experiments.training import FolderLock, save_checkpoint


def _vae_flows(argv):
    return vae.run(argv, flows=True)


def _vae_vanilla(argv):
    return vae.run(argv, analytic_kl=True)


TRAINERS = {'iw_vae': vae.run, 'iw_vae_normflow': _vae_flows,
            'vae_vanilla': _vae_vanilla, 'vimco': vimco.run,
            'mnist_ladder': ladder.run, 'm2': m2.run,
            'sweep_m2': lambda argv: sweep.main(['m2'] + argv)}


def every_parser():
    flows = vae.vae_argument_parser('flows')
    vae.add_flow_flags(flows)
    return {'vae': vae.vae_argument_parser('vae'), 'flows': flows,
            'vimco': vimco.vimco_argument_parser('vimco'),
            'ladder': ladder.ladder_argument_parser('ladder'),
            'm2': m2.m2_argument_parser(),
            'sweep': sweep.sweep_argument_parser()}


def is_numeric(action):
    return action.type in (int, float) or \
        getattr(action.type, '__qualname__', '').startswith('number_list')


def test_every_numeric_flag_of_every_trainer_has_one_rule():
    numeric = {action.dest for parser in every_parser().values()
               for action in parser._actions if is_numeric(action)}
    assert len(numeric) > 40
    assert numeric - set(cli.ALLOWED) == set()
    # ... and no rule is left without a flag.
    assert set(cli.ALLOWED) - numeric == set()


@pytest.mark.parametrize('allowed,accepted,refused,text', [
    (cli.Allowed(0, open_low=True), [1e-12, 3.0, 10 ** 6],
     [0, -0.01, float('nan'), float('inf'), True, '1'], 'a finite number > 0'),
    (cli.Allowed(1, 60000, integer=True, why='(the images)'), [1, 60000],
     [0, 60001, 2.5, -1], 'an integer in [1, 60000] (the images)'),
    (cli.Allowed(0, 1, open_high=True), [0, 0.999], [1, -1e-9],
     'a finite number in [0, 1)'),
    (cli.Allowed(0, 2 ** 32 - 2, integer=True), [0, 4294967294],
     [-1, 4294967295], 'an integer in [0, 4294967294]'),
    (cli.Allowed(1, 1, integer=True), [1], [2], 'an integer equal to 1'),
])
def test_allowed_accepts_and_describes_its_range(allowed, accepted, refused,
                                                 text):
    assert all(allowed.accepts(value) for value in accepted)
    assert not any(allowed.accepts(value) for value in refused)
    assert allowed.describe() == text


@pytest.fixture
def nothing_may_load_or_compile(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('loaded or compiled before the flags were '
                             'checked')
    for name in ('load_mnist_realval', 'load_mnist_dynamic',
                 'load_mnist_binarized'):
        monkeypatch.setattr(datasets, name, refuse)
    monkeypatch.setattr(theano, 'function', refuse)


BAD_SETTINGS = [
    # The cases of issue #14, then one per kind of rule and trainer.
    ('iw_vae', ['--preset', 'burda', '-nhid', '16'],
     'unrecognized arguments: -nhid 16 (flags cannot be abbreviated; -nhid: '
     'did you mean -nhidden?)'),
    ('iw_vae', ['--preset', 'burda', '-nepoch', '5'],
     'did you mean -nepochs?'),
    ('iw_vae', ['-lr', '-0.01'], '-lr must be a finite number > 0, got -0.01'),
    ('iw_vae', ['--max-norm', '-1'],
     '--max-norm must be a finite number >= 0 (0: off), got -1.0'),
    ('iw_vae', ['--clip-value', '-1'],
     '--clip-value must be a finite number >= 0 (0: off), got -1.0'),
    ('iw_vae', ['--train-subset', '0'], '--train-subset must be an integer '
     'in [1, 60000] (the training images), got 0'),
    ('iw_vae', ['--train-subset', '60001'], 'got 60001'),
    ('iw_vae', ['--eval-subset', '-1'], '--eval-subset must be an integer in '
     '[1, 10000] (the test images), got -1'),
    ('iw_vae_normflow', ['-nflows', '-2'],
     '-nflows must be an integer >= 0, got -2'),
    ('iw_vae', ['--checkpoint-every', '0'],
     '--checkpoint-every must be an integer >= 1, got 0'),
    ('iw_vae', ['--eval-iw', '0'], '--eval-iw must be an integer >= 1, got 0'),
    ('iw_vae', ['--final-iw', '0'],
     '--final-iw must be an integer >= 1, got 0'),
    ('iw_vae', ['--seed', '-1'],
     '--seed must be an integer in [0, 4294967294], got -1'),
    ('iw_vae', ['-lr', 'nan'], '-lr must be a finite number > 0, got nan'),
    ('iw_vae', ['--adam-epsilon', '0'],
     '--adam-epsilon must be a finite number > 0, got 0.0'),
    ('iw_vae', ['-anneal_lr_factor', '1.5'],
     '-anneal_lr_factor must be a finite number in (0, 1], got 1.5'),
    ('iw_vae', ['--max-minutes', '-1'], '--max-minutes must be'),
    ('vae_vanilla', ['-iw_samples', '5'], 'needs -iw_samples 1'),
    ('vimco', ['-iw_samples', '1'], '-iw_samples must be an integer >= 2'),
    ('vimco', ['-batch_size', '0'], '-batch_size must be an integer >= 1'),
    ('mnist_ladder', ['-lambdas', '1000,-10,0.1,0.1,0.1,0.1,0.1'],
     'every entry of -lambdas must be a finite number >= 0, got -10.0'),
    ('mnist_ladder', ['--layers', '784,0,10', '-lambdas', '1,1,1'],
     'every entry of --layers must be an integer >= 1, got 0'),
    ('mnist_ladder', ['--train-subset', '50001'], 'in [2, 50000] (the '
     'training images of --train-set 50k), got 50001'),
    ('mnist_ladder', ['--train-set', '60k', '--train-subset', '60001'],
     'in [2, 60000]'),
    ('mnist_ladder', ['--noise-std', '-0.3'], '--noise-std must be'),
    ('mnist_ladder', ['--labels', '1000', '--train-subset', '500'],
     '--labels 1000 needs at least as many training images'),
    ('m2', ['-idrop', '1'], '-idrop must be a finite number in [0, 1), got '
     '1.0'),
    ('m2', ['-seed', '429496730'], '--seed/-seed must be an integer in [0, '
     '429496729] (the labels are drawn with RandomState(10 * seed))'),
    ('m2', ['-sharpening', '0'], '-sharpening must be a finite number > 0'),
    ('m2', ['-bs', '0'], '-batch_size/-bs must be an integer >= 1, got 0'),
    ('m2', ['--eval-subset', '10001'], '--eval-subset must be an integer in '
     '[1, 10000]'),
    ('sweep_m2', ['--seeds', '1,-2'], "expected seeds such as 1-10 or 1,3,5, "
     "got '1,-2'"),
    ('sweep_m2', ['--seeds', '429496730'], '--seed/-seed must be an integer '
     'in [0, 429496729]'),
    ('sweep_m2', ['-lr', '-1'], '-lr must be a finite number > 0'),
    ('sweep_m2', ['-seed=3'], '-seed=3 is set by the sweep'),
    ('sweep_m2', ['--workers', '0'], '--workers must be an integer >= 1'),
    ('sweep_m2', ['--max-minutes', '0'], '--max-minutes must be a finite '
     'number > 0'),
]


@pytest.mark.parametrize('trainer,argv,message', BAD_SETTINGS)
def test_a_bad_setting_stops_before_anything_loads_naming_it(
        trainer, argv, message, tmp_path, capsys, nothing_may_load_or_compile):
    folder = tmp_path / 'out'
    with pytest.raises(SystemExit) as stop:
        TRAINERS[trainer](argv + ['-outfolder', str(folder)])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not folder.exists()


def test_a_preset_keeps_every_flag_given_in_any_spelling(tmp_path):
    parser = vae.vae_argument_parser('IWAE')
    args, schedule = vae.parse_vae_args(parser, [
        '--preset', 'burda', '-nhidden=16', '-nepochs', '5',
        '-outfolder', str(tmp_path)])
    assert (args.nhidden, args.nepochs) == (16, 5)
    # The rest is Burda et al.'s.
    assert (args.nlatent, args.batch_size, args.batch_norm, args.max_norm) \
        == (50, 20, False, None)
    assert schedule(1) == 1e-3 and schedule(2) == pytest.approx(
        1e-3 * 10 ** (-1 / 7.))
    assert cli.given_flags(m2.m2_argument_parser(),
                           ['-bs', '5', '-ep=3', '--seed', '2']) == \
        {'batch_size', 'nepochs', 'seed'}


def test_an_output_folder_that_is_a_file_or_unwritable_is_refused(
        tmp_path, capsys):
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    if os.geteuid() == 0:
        # Permissions do not stop root; /proc takes no new folders.
        unwritable = '/proc/parmesan-test/run'
    else:
        locked = tmp_path / 'locked'
        locked.mkdir(mode=0o555)
        unwritable = str(locked / 'run')
    for folder, problem in ((str(a_file), 'exists and is not a folder'),
                            (unwritable, 'is not writable')):
        with pytest.raises(SystemExit) as stop:
            vae.run(['-outfolder', folder])
        assert stop.value.code == 2
        assert '-outfolder %s %s' % (folder, problem) in \
            capsys.readouterr().err


def test_resume_needs_a_readable_checkpoint(tmp_path, capsys,
                                            nothing_may_load_or_compile):
    checkpoint = tmp_path / 'checkpoint.npz'
    with pytest.raises(SystemExit):
        vae.run(['-outfolder', str(tmp_path), '--resume'])
    assert '--resume: no checkpoint at %s' % checkpoint in \
        capsys.readouterr().err
    variable = theano.shared(1.0)
    save_checkpoint(str(checkpoint), [variable], __import__(
        'numpy').random.RandomState(0), 1, [])
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(SystemExit) as stop:
        vae.run(['-outfolder', str(tmp_path), '--resume'])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert 'the checkpoint %s cannot be read' % checkpoint in error
    assert 'truncated or corrupt' in error


def run_args(folder):
    return argparse.Namespace(outfolder=str(folder), seed=1, resume=False,
                              checkpoint_every=1, max_minutes=None)


def test_a_second_run_on_a_held_folder_stops_naming_the_first(tmp_path,
                                                              capsys):
    with cli.start_run(run_args(tmp_path), ['-iw_samples', '5']):
        with pytest.raises(SystemExit) as stop:
            cli.start_run(run_args(tmp_path), [])
        assert stop.value.code == 2
        error = capsys.readouterr().err
        assert 'the output folder %s is in use by another run (pid %d on ' \
            % (tmp_path, os.getpid()) in error
        assert '-iw_samples 5' in error
    # Released at the end of the with-block.
    assert not (tmp_path / 'run.lock').exists()
    with cli.start_run(run_args(tmp_path), []) as run:
        assert run.notes == []


def test_a_stale_lock_and_partial_writes_are_cleared_at_the_start(tmp_path):
    (tmp_path / 'run.lock').write_text(json.dumps(
        {'pid': 999999, 'host': 'elsewhere', 'started': 'yesterday',
         'command': 'iw_vae.py'}))
    (tmp_path / '.checkpoint.npz.ab12cd34.tmp').write_bytes(b'x' * 2000)
    (tmp_path / 'tmpzz99yy88.tmp').write_bytes(b'x' * 1000)
    with cli.start_run(run_args(tmp_path), []) as run:
        assert run.notes == [
            'took over the lock of a run that ended without releasing it '
            '(killed?): pid 999999 on elsewhere, started yesterday: '
            'iw_vae.py',
            'removed 2 temporary file(s) of interrupted writes '
            '(.checkpoint.npz.ab12cd34.tmp, tmpzz99yy88.tmp; 3000 bytes)']
        assert isinstance(run.lock, FolderLock)
        assert sorted(os.listdir(str(tmp_path))) == ['config.json',
                                                     'run.lock']
