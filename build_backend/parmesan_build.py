"""Setuptools' build backend, plus Parmesan's start-up hook in every wheel.

Parmesan ships ``parmesan_compat.pth`` at the root of site-packages, where
Python runs it at start-up (see ``parmesan_compat.py``). Setuptools has no
public way to put such a file into an editable install's wheel, so this
in-tree backend (setuptools' documented way to adjust ``build_meta``)
builds every wheel with ``setuptools.build_meta`` and then adds the file,
with its line in the wheel's RECORD: ``pip install .``, ``pip install -e
.``, ``python -m build`` and a wheel built from the sdist all install it.
"""
import base64
import hashlib
import os
import shutil
import tempfile
import zipfile

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (the other hooks)

STARTUP_HOOK = 'parmesan_compat.pth'
_SOURCE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), STARTUP_HOOK)


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    name = _setuptools.build_wheel(wheel_directory, config_settings,
                                   metadata_directory)
    add_startup_hook(os.path.join(wheel_directory, name))
    return name


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    name = _setuptools.build_editable(wheel_directory, config_settings,
                                      metadata_directory)
    add_startup_hook(os.path.join(wheel_directory, name))
    return name


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return '%s,sha256=%s,%d\n' % (path, digest.rstrip(b'=').decode(),
                                  len(data))


def add_startup_hook(wheel_path, hook_path=_SOURCE):
    """Rewrite the wheel at `wheel_path` with the start-up hook at its root
    (replacing one it has) and the hook's line in its RECORD."""
    with open(hook_path, 'rb') as stream:
        hook = stream.read()
    name = os.path.basename(hook_path)
    folder = os.path.dirname(os.path.abspath(wheel_path))
    with tempfile.NamedTemporaryFile(dir=folder, suffix='.whl',
                                     delete=False) as out_file:
        temporary = out_file.name
    try:
        with zipfile.ZipFile(wheel_path) as wheel, \
                zipfile.ZipFile(temporary, 'w', zipfile.ZIP_DEFLATED) as out:
            for info in wheel.infolist():
                if info.filename == name:
                    continue
                data = wheel.read(info)
                if info.filename.endswith('.dist-info/RECORD'):
                    lines = [line for line in data.decode().splitlines(True)
                             if not line.startswith(name + ',')]
                    data = ''.join(lines + [_record_line(name, hook)]).encode()
                    out.writestr(name, hook)
                out.writestr(info, data)
        shutil.copymode(wheel_path, temporary)
        shutil.move(temporary, wheel_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
