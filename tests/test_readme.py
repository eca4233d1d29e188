"""The README's set-up commands stay true: CI runs the test command."""
import os
import re

from conftest import REPO


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


def test_main_job_names_an_existing_example():
    script = readme_commands()[0].split()[-1]
    assert os.path.isfile(os.path.join(REPO, script))
