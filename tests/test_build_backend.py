"""The build backend adds the start-up hook to a wheel, with a RECORD line
that matches the file (checked against hashlib and zipfile directly)."""
import base64
import hashlib
import os
import sys
import zipfile

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'build_backend'))
import parmesan_build  # noqa: E402

DIST_INFO = 'demo-1.0.dist-info/'


def make_wheel(path, hook_line=None):
    record = 'demo/__init__.py,sha256=abc,3\n%sRECORD,,\n' % DIST_INFO
    with zipfile.ZipFile(path, 'w') as wheel:
        wheel.writestr('demo/__init__.py', 'x=1')
        if hook_line is not None:
            wheel.writestr('parmesan_compat.pth', 'old')
            record = hook_line + record
        wheel.writestr(DIST_INFO + 'RECORD', record)


def test_hook_added_with_its_record_line(tmp_path):
    wheel_path = tmp_path / 'demo-1.0-py3-none-any.whl'
    make_wheel(wheel_path)
    hook = tmp_path / 'parmesan_compat.pth'
    hook.write_bytes(b'import sys\n')
    parmesan_build.add_startup_hook(str(wheel_path), str(hook))
    with zipfile.ZipFile(wheel_path) as wheel:
        assert wheel.read('parmesan_compat.pth') == b'import sys\n'
        assert wheel.read('demo/__init__.py') == b'x=1'
        record = wheel.read(DIST_INFO + 'RECORD').decode().splitlines()
    digest = base64.urlsafe_b64encode(
        hashlib.sha256(b'import sys\n').digest()).rstrip(b'=').decode()
    assert record[-1] == 'parmesan_compat.pth,sha256=%s,11' % digest
    assert record[:2] == ['demo/__init__.py,sha256=abc,3',
                          DIST_INFO + 'RECORD,,']


def test_a_hook_already_there_is_replaced_once(tmp_path):
    wheel_path = tmp_path / 'demo-1.0-py3-none-any.whl'
    make_wheel(wheel_path, 'parmesan_compat.pth,sha256=old,3\n')
    parmesan_build.add_startup_hook(str(wheel_path))
    with zipfile.ZipFile(wheel_path) as wheel:
        names = wheel.namelist()
        record = wheel.read(DIST_INFO + 'RECORD').decode()
        shipped = wheel.read('parmesan_compat.pth')
    assert names.count('parmesan_compat.pth') == 1
    assert record.count('parmesan_compat.pth,') == 1
    with open(os.path.join(REPO, 'parmesan_compat.pth'), 'rb') as source:
        assert shipped == source.read()
    assert len(list(tmp_path.iterdir())) == 1  # no temporary file left
