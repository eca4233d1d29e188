"""The sweep runner (parmesan.experiments.sweep, examples/sweep.py and
m2_multiseed.py): seeds and grids, checks before anything runs, the
summary against numpy over the runs' own results, resuming an interrupted
sweep, and a Dask cluster whose worker is killed mid-run."""
import csv
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from parmesan.experiments import sweep
from parmesan.experiments.sweep import parse_seeds, run_status
from parmesan.experiments.trainers import TRAINERS

#: A tiny M2 classifier (the MLP baseline trains in about a second).
TINY_M2 = ['--train-subset', '200', '--eval-subset', '100', '-qh', '8',
           '-ql', '1', '-al', '1', '-bs', '50', '-eval_epoch', '1']


def test_seed_lists():
    assert parse_seeds('1-3,7') == [1, 2, 3, 7]
    assert parse_seeds('4') == [4]
    for bad in ('1-x', '', '1,1', '3-1'):
        with pytest.raises(Exception, match='seeds'):
            parse_seeds(bad)


@pytest.mark.parametrize('argv,message', [
    (['m2', '--set', 'no_such=1'], 'm2 has no such flag'),
    (['m2', '--set', 'seed=1,2'], 'the sweep sets --seed itself'),
    (['m2', '--seed', '3'], '--seed is set by the sweep'),
    (['m2', '--resume'], '--resume is set by the sweep'),
    (['m2', '--models', 'ExactM2,NoSuchModel'], 'NoSuchModel'),
    (['m2', '--set', 'bs=fifty'], "invalid int value: 'fifty'"),
    (['m2', '--workers', '0'], '--workers must be an integer >= 1'),
    (['no_such_trainer'], "invalid choice: 'no_such_trainer'"),
])
def test_bad_sweeps_stop_before_anything_runs(argv, message, tmp_path,
                                              capsys):
    folder = tmp_path / 'sweep'
    with pytest.raises(SystemExit) as stop:
        sweep.main(argv + ['-outfolder', str(folder)])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not folder.exists()


def test_grid_folders_and_flags(tmp_path):
    parser = sweep.sweep_argument_parser()
    args, flags = parser.parse_known_args(
        ['iw_vae', '--set', 'iw_samples=1,5', '--set', 'eval-iw=10',
         '--seeds', '2-3', '-outfolder', str(tmp_path), '--',
         '--preset', 'burda'])
    plan = sweep.plan_sweep(args, flags[1:], parser.error)
    assert [plan.label(s) for s in plan.settings] == [
        'iw_samples=1,eval_iw=10', 'iw_samples=5,eval_iw=10']
    setting = plan.settings[1]
    assert plan.folder(setting, 3) == os.path.join(
        str(tmp_path), 'iw_samples=5,eval_iw=10', 'seed3')
    assert plan.argv(setting, 3) == ['--preset', 'burda', '-iw_samples',
                                     '5', '--eval-iw', '10', '--seed', '3']
    assert len(plan.runs()) == 4


def results_of(folder):
    with open(os.path.join(folder, 'results.json')) as stream:
        return json.load(stream)


@pytest.mark.slow
def test_sweep_summary_matches_numpy_and_a_second_sweep_skips(
        tmp_path, shared_data_dir, capsys):
    outfolder = str(tmp_path / 'sweep')
    argv = ['m2', '--models', 'MLP', '--seeds', '1-3', '-outfolder',
            outfolder, '--', '--data-dir', shared_data_dir, '-ep', '2'] + \
        TINY_M2
    rows = sweep.main(argv)
    runs = [results_of(os.path.join(outfolder, 'model=MLP', 'seed%d' % s))
            for s in (1, 2, 3)]
    # Different seeds draw different labelled images.
    assert len({tuple(r['labelled_rows']) for r in runs}) == 3
    for metric in ('valid_acc', 'test_acc'):
        values = np.array([r[metric] for r in runs])
        row, = [r for r in rows if r['metric'] == metric]
        assert row['n'] == 3 and row['epochs_min'] == row['epochs_max'] == 2
        np.testing.assert_allclose(row['mean'], values.mean(), rtol=1e-12)
        np.testing.assert_allclose(row['std'], values.std(ddof=1),
                                   rtol=1e-12)
        np.testing.assert_allclose(row['stderr'],
                                   values.std(ddof=1) / np.sqrt(3),
                                   rtol=1e-12)
    with open(os.path.join(outfolder, 'summary.csv')) as stream:
        table = list(csv.DictReader(stream))
    assert [(r['setting'], r['metric']) for r in table] == [
        ('model=MLP', 'valid_acc'), ('model=MLP', 'test_acc')]
    assert float(table[0]['reference']) == 0.771  # vae_ssl's MLP
    assert os.path.getsize(os.path.join(outfolder, 'curves.png')) > 0
    capsys.readouterr()
    sweep.main(argv)
    assert capsys.readouterr().out.count('done already') == 3


def test_runs_in_progress_are_summarised_from_their_latest_evaluation(
        tmp_path, capsys):
    """Unfinished runs (a log, no results.json) give their last periodic
    test_L100 and the epoch it was taken at, flagged as in progress."""
    outfolder = str(tmp_path / 'burda')
    argv = ['iw_vae', '--set', 'iw_samples=5', '--seeds', '1-2',
            '--summary-only', '-outfolder', outfolder, '--', '--preset',
            'burda', '--eval-iw', '100']
    rng = np.random.RandomState(0)
    last = {}
    for seed, epochs in ((1, 41), (2, 37)):
        folder = os.path.join(outfolder, 'iw_samples=5', 'seed%d' % seed)
        os.makedirs(folder)
        with open(os.path.join(folder, 'log.jsonl'), 'w') as stream:
            for epoch in range(1, epochs + 1):
                row = {'epoch': epoch, 'train_bound': -100.0}
                if epoch % 20 == 0:
                    row['test_L100'] = last[seed] = -90 - rng.rand()
                stream.write(json.dumps(row) + '\n')
    rows = sweep.main(argv)
    row, = rows
    values = np.array([last[1], last[2]])
    assert (row['metric'], row['status'], row['n']) == \
        ('test_L100', 'in progress', 2)
    assert (row['epochs_min'], row['epochs_max']) == (20, 40)
    np.testing.assert_allclose(row['mean'], values.mean(), rtol=1e-12)
    np.testing.assert_allclose(row['stderr'], values.std(ddof=1) /
                               np.sqrt(2), rtol=1e-12)
    assert row['reference'] == -85.54  # Burda et al., IWAE k=5
    assert '| in progress |' in capsys.readouterr().out


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_to_the_uninterrupted_result(
        tmp_path, shared_data_dir, capsys):
    flags = ['--data-dir', shared_data_dir, '-ep', '3',
             '--checkpoint-every', '1'] + TINY_M2

    def sweep_into(outfolder):
        return sweep.main(['m2', '--models', 'MLP', '--seeds', '1',
                           '-outfolder', outfolder, '--'] + flags)

    straight = str(tmp_path / 'straight')
    split = str(tmp_path / 'split')
    sweep_into(straight)
    # A sweep stopped during its run: the run has a checkpoint after
    # epoch 1 (--max-minutes 0 stops a trainer after its first epoch).
    folder = os.path.join(split, 'model=MLP', 'seed1')
    TRAINERS['m2'].run(flags + ['-model', 'MLP', '--seed', '1',
                                '-outfolder', folder, '--max-minutes', '0'])
    assert run_status(folder) == 'resume'
    capsys.readouterr()
    sweep_into(split)
    assert 'resumed' in capsys.readouterr().out
    assert run_status(folder) == 'done'
    expected = results_of(os.path.join(straight, 'model=MLP', 'seed1'))
    resumed = results_of(folder)
    for key in ('epochs', 'valid_acc', 'test_acc'):
        assert resumed[key] == expected[key], key
    for key, value in expected['last_train'].items():
        if key != 'seconds':
            assert resumed['last_train'][key] == value, key


@pytest.mark.slow
def test_dask_cluster_survives_a_killed_worker(tmp_path, shared_data_dir):
    """Two runs on a local Dask cluster of two workers; the worker of seed
    1 is killed right after its first checkpoint. Dask reschedules the run,
    which resumes from that checkpoint and finishes."""
    distributed = pytest.importorskip('distributed')
    outfolder = str(tmp_path / 'sweep')
    parser = sweep.sweep_argument_parser()
    args, flags = parser.parse_known_args(
        ['m2', '--models', 'MLP', '--seeds', '1-2', '-outfolder',
         outfolder, '--data-dir', shared_data_dir, '-ep', '40',
         '--checkpoint-every', '1', '--train-subset', '1000'] + TINY_M2[2:])
    plan = sweep.plan_sweep(args, flags, parser.error)
    victim = plan.folder(plan.settings[0], 1)
    killed = []

    def kill_after_first_checkpoint(client):
        while not os.path.exists(os.path.join(victim, 'checkpoint.npz')):
            time.sleep(0.02)
        for worker, keys in client.processing().items():
            if any(victim in str(key) for key in keys):
                pid = client.run(os.getpid, workers=[worker])[worker]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return

    environment = dict(os.environ)
    with sweep.local_cluster(2) as cluster, \
            distributed.Client(cluster) as client:
        killer = threading.Thread(target=kill_after_first_checkpoint,
                                  args=(client,), daemon=True)
        killer.start()
        outcomes = sweep.execute(plan, scheduler=cluster.scheduler_address)
        killer.join(timeout=60)
    # Dask's settings for its workers do not stay in this process.
    assert dict(os.environ) == environment
    assert killed, 'the run finished before its worker could be killed'
    assert sorted(o['action'] for o in outcomes) == ['resumed', 'started']
    for seed in (1, 2):
        assert run_status(plan.folder(plan.settings[0], seed)) == 'done'
    with open(os.path.join(victim, 'log.txt')) as stream:
        assert 'resumed from' in stream.read()
