"""``parmesan-train NAME`` / ``python -m parmesan.experiments NAME``: the
registry's names, usage, unknown names, and the installed commands."""
import os
import subprocess
import sys
import sysconfig

import pytest

from parmesan.experiments.__main__ import main
from parmesan.experiments.trainers import TRAINERS


def test_usage_lists_every_trainer_sweep_and_evaluate(capsys):
    assert main([]) is None
    usage = capsys.readouterr().out
    names = usage.split('{')[1].split('}')[0].split(',')
    assert names == list(TRAINERS) + ['sweep', 'evaluate']
    assert len(names) == 8


def test_unknown_trainer_is_named():
    with pytest.raises(SystemExit) as stop:
        main(['iw_vea'])
    assert "unknown trainer 'iw_vea'" in str(stop.value)


@pytest.mark.parametrize('command', [
    ['parmesan-train', 'iw_vae', '--help'],
    ['parmesan-sweep', '--help'],
    [sys.executable, '-m', 'parmesan.experiments', 'm2', '--help']])
def test_installed_commands_run_from_anywhere(command, tmp_path):
    scripts = sysconfig.get_paths()['scripts']
    if not command[0].startswith(sys.executable):
        command = [os.path.join(scripts, command[0])] + command[1:]
    result = subprocess.run(command, cwd=str(tmp_path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    # the usage line names the whole command, trainer included
    expected = {'parmesan-train': 'usage: parmesan-train iw_vae ',
                'parmesan-sweep': 'usage: parmesan-sweep ',
                sys.executable: 'usage: python -m parmesan.experiments m2 '}
    assert first.startswith(expected[command[0] if command[0] ==
                                     sys.executable else
                                     os.path.basename(command[0])])
    assert [line for line in result.stderr.splitlines()
            if 'compilelock' not in line] == []
