"""benchmarks/gpu_bundle.py: the pins it carries, the CUDA names it links,
the environment it hands to Theano's workers. (Building and installing a
bundle downloads 56 MB: rehearsed by hand, see the module's docstring.)"""
import json
import os
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
import gpu_bundle  # noqa: E402


def test_pins_are_the_requirements_files():
    pins = gpu_bundle._pins()
    with open(os.path.join(REPO, 'requirements.txt')) as stream:
        assert 'numpy==1.26.4' in stream.read()
    assert pins['numpy'] == 'numpy==1.26.4'
    assert pins['theano'] == 'Theano==1.0.5'
    assert pins['lasagne'] == 'Lasagne==0.1'
    with open(os.path.join(REPO, 'requirements-gpu.txt')) as stream:
        mako = [line.strip() for line in stream if line.startswith('Mako')]
    assert [pins['mako']] == mako


def test_cuda_names_link_to_the_shortest_versioned_library(tmp_path,
                                                           monkeypatch):
    driver, wheels = tmp_path / 'driver', tmp_path / 'nvidia'
    driver.mkdir()
    wheels.mkdir()
    for folder, name in [(driver, 'libcuda.so.1'),
                         (driver, 'libcuda.so.580.65.06'),
                         (wheels, 'libnvrtc.so.13'),
                         (wheels, 'libnvrtc-builtins.so.13.0')]:
        (folder / name).write_text('')
    monkeypatch.setattr(gpu_bundle, '_search_folders',
                        lambda: [str(driver), str(wheels)])
    links = tmp_path / 'links'
    found = gpu_bundle._link_cuda_names(str(links))
    assert found['linked'] == {
        'libcuda.so': str(driver / 'libcuda.so.1'),
        'libnvrtc.so': str(wheels / 'libnvrtc.so.13')}
    assert found['missing'] == ['libcublas.so']
    assert os.readlink(str(links / 'libcuda.so')) == \
        str(driver / 'libcuda.so.1')
    assert found['folders'] == sorted([str(driver), str(wheels)])


def test_environment_puts_the_bundle_first(tmp_path, monkeypatch):
    (tmp_path / 'env.json').write_text(json.dumps({'env': {
        'PYTHONPATH': '/b/site', 'THEANO_FLAGS': 'gcc.cxxflags=-I/b/i',
        'LD_LIBRARY_PATH': '/b/lib'}}))
    monkeypatch.setenv('PYTHONPATH', '/mine')
    monkeypatch.setenv('THEANO_FLAGS', 'device=cuda0')
    monkeypatch.delenv('LD_LIBRARY_PATH', raising=False)
    env = gpu_bundle.environment(str(tmp_path))
    assert env['PYTHONPATH'] == '/b/site' + os.pathsep + '/mine'
    # Theano reads its flags left to right: the user's come last and win
    assert env['THEANO_FLAGS'] == 'gcc.cxxflags=-I/b/i,device=cuda0'
    assert env['LD_LIBRARY_PATH'] == '/b/lib'


def test_install_refuses_a_bundle_for_another_python(tmp_path):
    (tmp_path / 'manifest.json').write_text(json.dumps({'python': '2.7'}))
    with pytest.raises(SystemExit, match='built for Python 2.7'):
        gpu_bundle.install(str(tmp_path))
