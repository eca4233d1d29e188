"""Carry Parmesan's stack to a GPU machine that reaches no package registry.

The GPU machines to plan for run Python 3.12 with numpy 2, CUDA 13 and
PyTorch, and take a bundle of at most 64 MiB. Theano 1.0.5 needs numpy 1.x,
and its GPU backend needs pygpu + libgpuarray, which are on no registry for
Python 3.12. Two steps:

``build`` (here: a Debian/Ubuntu machine with PyPI and Debian's archive)
    downloads the Python 3.12 wheels of the pinned stack (numpy, scipy,
    Mako, MarkupSafe, six, setuptools), builds wheels of Theano and Lasagne
    (pure Python, so built here), and takes from Debian's packages
    ``libgpuarray3``, ``libgpuarray-dev`` and ``python3-pygpu`` the shared
    library, its headers, and pygpu's Python files with the C sources Cython
    generated for its extensions. Nothing is built for the target here.

``install`` (there, offline, with the Python that will run the benchmark)
    unpacks the wheels into ``<bundle>/site``, compiles pygpu's extensions
    for that Python with its C compiler and headers (which Theano needs
    anyway: it compiles every op), links the unversioned CUDA names
    libgpuarray loads (``libcuda.so``, ``libnvrtc.so``, ``libcublas.so``)
    to the versioned libraries of the driver and of PyTorch's NVIDIA wheels,
    and writes ``<bundle>/env.json`` (and ``env.sh``): the environment
    under which ``import theano`` finds all of it. Parmesan's start-up hook
    becomes ``site/sitecustomize.py``, since a PYTHONPATH folder runs no
    ``.pth``.

Usage::

    python benchmarks/gpu_bundle.py build               # -> build/gpu_bundle
    python benchmarks/gpu_bundle.py install build/gpu_bundle
    . build/gpu_bundle/env.sh && THEANO_FLAGS=device=cuda0 python -c \\
        'import theano'

A bundle is for one Python version; ``build --python-version 3.11`` makes
one for this machine's Python, which is how its install is rehearsed here,
without a GPU and offline (``tests/test_benchmarks.py``).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_BUNDLE = os.path.join(REPO, 'build', 'gpu_bundle')
LIMIT_BYTES = 64 * 2 ** 20

#: Binary wheels for the target Python (versions as requirements.txt and
#: requirements-gpu.txt pin them, plus what they need at run time).
WHEELS = ['MarkupSafe==3.0.2', 'six==1.17.0', 'setuptools==80.9.0']
#: Pure-Python packages with only a source release: built into wheels here.
SOURCE_BUILT = ['Theano', 'Lasagne']
DEBIAN_PACKAGES = ['libgpuarray3', 'libgpuarray-dev', 'python3-pygpu']
PYGPU_EXTENSIONS = ['gpuarray', 'blas', '_elemwise', 'collectives']
#: Cython 0.29.32 generated pygpu's C for Python 3.11; these of its
#: optimisations reach into interpreter internals that Python 3.12 changed
#: (integer digits, the thread state's exception fields, dict versions).
#: Switched off, the same C builds against the public API only.
CYTHON_PORTABLE = ['CYTHON_USE_PYLONG_INTERNALS', 'CYTHON_FAST_THREAD_STATE',
                   'CYTHON_USE_EXC_INFO_STACK', 'CYTHON_USE_DICT_VERSIONS',
                   'CYTHON_FAST_PYCALL', 'CYTHON_FAST_PYCCALL',
                   'CYTHON_USE_UNICODE_INTERNALS']
#: Unversioned names libgpuarray dlopens for CUDA -> versioned names found.
CUDA_NAMES = {'libcuda.so': 'libcuda.so.*', 'libnvrtc.so': 'libnvrtc.so.*',
              'libcublas.so': 'libcublas.so.*'}


def _run(command, **kwargs):
    print('+ ' + ' '.join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def _pins():
    """name==version lines of requirements.txt and requirements-gpu.txt."""
    pins = {}
    for name in ('requirements.txt', 'requirements-gpu.txt'):
        with open(os.path.join(REPO, name)) as stream:
            for line in stream:
                line = line.split('#')[0].strip()
                if '==' in line:
                    package, version = line.split('==')
                    pins[package.strip().lower()] = line
    return pins


def _folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(folder) for name in names)


# ---------------------------------------------------------------- build

def build(out, python_version):
    """Assemble the bundle in `out` from PyPI and Debian's archive."""
    pins = _pins()
    wheels = os.path.join(out, 'wheels')
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(wheels)
    pip = [sys.executable, '-m', 'pip']
    tag = python_version.replace('.', '')
    _run(pip + ['download', '-q', '--no-deps', '--only-binary=:all:',
                '--python-version', python_version, '--implementation', 'cp',
                '--abi', 'cp' + tag, '--abi', 'none',
                '--platform', 'manylinux_2_17_x86_64',
                '--platform', 'manylinux2014_x86_64', '--platform', 'any',
                '-d', wheels, pins['numpy'], pins['scipy'], pins['mako']] +
         WHEELS)
    _run(pip + ['wheel', '-q', '--no-deps', '--no-binary', ':all:', '-w',
                wheels] + [pins[name.lower()] for name in SOURCE_BUILT])
    with tempfile.TemporaryDirectory() as scratch:
        _run(['apt-get', 'download', '-qq'] + DEBIAN_PACKAGES, cwd=scratch)
        root = os.path.join(scratch, 'root')
        for deb in glob.glob(os.path.join(scratch, '*.deb')):
            _run(['dpkg-deb', '-x', deb, root])
        _take_libgpuarray(root, out)
    size = _folder_bytes(out)
    manifest = {'python': python_version, 'bytes': size,
                'files': sorted(os.path.relpath(os.path.join(r, n), out)
                                for r, _, ns in os.walk(out) for n in ns)}
    with open(os.path.join(out, 'manifest.json'), 'w') as stream:
        json.dump(manifest, stream, indent=1)
    print('bundle: %s, %.1f MiB of %d MiB' % (out, size / 2.0 ** 20,
                                            LIMIT_BYTES // 2 ** 20))
    if size > LIMIT_BYTES:
        sys.exit('the bundle exceeds %d MiB' % (LIMIT_BYTES // 2 ** 20))
    return manifest


def _take_libgpuarray(root, out):
    """libgpuarray.so.3, its headers, and pygpu without its 3.11 builds."""
    lib = os.path.join(out, 'lib')
    os.makedirs(lib)
    found = [path for pattern in ('usr/lib/libgpuarray.so.*',
                                  'usr/lib/*/libgpuarray.so.*')
             for path in glob.glob(os.path.join(root, pattern))
             if not os.path.islink(path)]
    if len(found) != 1:
        sys.exit('expected one libgpuarray.so.3.* in the Debian packages, '
                 'found %s' % (found or 'none'))
    shutil.copy(found[0], os.path.join(lib, 'libgpuarray.so.3'))
    shutil.copytree(os.path.join(root, 'usr', 'include', 'gpuarray'),
                    os.path.join(out, 'include', 'gpuarray'))
    package = os.path.join(root, 'usr', 'lib', 'python3', 'dist-packages',
                           'pygpu')
    with tarfile.open(os.path.join(out, 'pygpu-src.tar.gz'), 'w:gz') as tar:
        for name in sorted(os.listdir(package)):
            if name.endswith(('.py', '.c', '.h')):
                tar.add(os.path.join(package, name), 'pygpu/' + name)


# ---------------------------------------------------------------- install

def install(bundle):
    """Make the bundle importable by this interpreter; return its env."""
    bundle = os.path.abspath(bundle)
    here = '%d.%d' % sys.version_info[:2]
    with open(os.path.join(bundle, 'manifest.json')) as stream:
        manifest = json.load(stream)
    if manifest['python'] != here:
        sys.exit('the bundle was built for Python %s; this is %s'
                 % (manifest['python'], here))
    compiler = _c_compiler()
    include = sysconfig.get_paths()['include']
    if not os.path.isfile(os.path.join(include, 'Python.h')):
        sys.exit('Python.h is missing from %s: Theano compiles every op '
                 'against it (install this Python\'s development headers, '
                 'e.g. python%s-dev)' % (include, here))
    site = os.path.join(bundle, 'site')
    if os.path.exists(site):
        shutil.rmtree(site)
    os.makedirs(site)
    for wheel in sorted(glob.glob(os.path.join(bundle, 'wheels', '*.whl'))):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    lib = os.path.join(bundle, 'lib')
    _relink(os.path.join(lib, 'libgpuarray.so'), 'libgpuarray.so.3')
    _build_pygpu(bundle, site, compiler, include)
    cuda = _link_cuda_names(os.path.join(lib, 'cuda'))
    with open(os.path.join(site, 'sitecustomize.py'), 'w') as stream:
        stream.write('# Parmesan\'s start-up hook (a PYTHONPATH folder runs '
                     'no .pth)\nimport parmesan_compat\n'
                     'parmesan_compat.install()\n')
    sys.path.insert(0, REPO)
    import parmesan_compat
    # Theano links its GPU ops with -L<its prefix>/lib first: a system
    # libgpuarray there would win over LIBRARY_PATH, so name ours first
    cxxflags = ' '.join(f for f in [parmesan_compat.THEANO_DEFAULTS.get(
        'gcc.cxxflags', ''), '-I' + os.path.join(bundle, 'include'),
        '-L' + lib] if f)  # (THEANO_FLAGS splits at commas: no -Wl,)
    env = {'PYTHONPATH': os.pathsep.join([site, REPO]),
           'THEANO_FLAGS': 'gcc.cxxflags=' + cxxflags,
           'LD_LIBRARY_PATH': os.pathsep.join(
               [lib, os.path.join(lib, 'cuda')] + cuda['folders']),
           'LIBRARY_PATH': lib, 'CPATH': os.path.join(bundle, 'include')}
    with open(os.path.join(bundle, 'env.json'), 'w') as stream:
        json.dump({'env': env, 'cuda': cuda['linked'],
                   'cuda_missing': cuda['missing']}, stream, indent=1)
    with open(os.path.join(bundle, 'env.sh'), 'w') as stream:
        for name, value in env.items():
            separator = ',' if name == 'THEANO_FLAGS' else ':'
            stream.write('export %s="%s${%s:+%s$%s}"\n' % (
                name, value, name, separator, name))
    print('installed: %s (CUDA names linked: %s; missing: %s)' % (
        bundle, ', '.join(sorted(cuda['linked'])) or 'none',
        ', '.join(cuda['missing']) or 'none'))
    return env


def environment(bundle):
    """os.environ with the installed bundle's settings in front."""
    with open(os.path.join(bundle, 'env.json')) as stream:
        settings = json.load(stream)['env']
    env = dict(os.environ)
    for name, value in settings.items():
        separator = ',' if name == 'THEANO_FLAGS' else os.pathsep
        env[name] = separator.join([value] + [v for v in [env.get(name)]
                                              if v])
    return env


def _c_compiler():
    for name in ('gcc', 'cc', 'g++'):
        path = shutil.which(name)
        if path:
            return path
    sys.exit('no C compiler (gcc): Theano compiles every op with g++, so '
             'the GPU machine needs one')


def _relink(link, target):
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(target, link)


def _build_pygpu(bundle, site, compiler, include):
    """Compile pygpu's Cython-generated C for this interpreter, in
    parallel."""
    with tarfile.open(os.path.join(bundle, 'pygpu-src.tar.gz')) as tar:
        tar.extractall(site)
    package = os.path.join(site, 'pygpu')
    numpy_include = os.path.join(site, 'numpy', 'core', 'include')
    suffix = sysconfig.get_config_var('EXT_SUFFIX')
    lib = os.path.join(bundle, 'lib')
    jobs = []
    for name in PYGPU_EXTENSIONS:
        command = [compiler, '-shared', '-fPIC', '-O2', '-w',
                   '-I' + include, '-I' + numpy_include,
                   '-I' + os.path.join(bundle, 'include'), '-I' + package,
                   '-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION'] + \
            ['-D%s=0' % macro for macro in CYTHON_PORTABLE] + \
            [os.path.join(package, name + '.c'), '-L' + lib, '-lgpuarray',
             '-Wl,-rpath,' + lib, '-o', os.path.join(package, name + suffix)]
        jobs.append((name, subprocess.Popen(command, stderr=subprocess.PIPE,
                                            text=True)))
    failed = []
    for name, job in jobs:
        _, errors = job.communicate()
        if job.returncode:
            failed.append('%s.c:\n%s' % (name, errors[-3000:]))
    if failed:
        sys.exit('pygpu does not compile for this Python:\n' +
                 '\n'.join(failed))
    for name in PYGPU_EXTENSIONS:
        os.remove(os.path.join(package, name + '.c'))
    print('pygpu compiled for %s' % suffix)


def _search_folders():
    """Where the driver's and NVIDIA's wheels' libraries may be."""
    folders = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib',
               '/usr/local/cuda/lib64', '/usr/local/nvidia/lib64',
               '/usr/lib/wsl/lib']
    folders += [f for f in os.environ.get('LD_LIBRARY_PATH', '').split(
        os.pathsep) if f]
    for site in set(sysconfig.get_paths()[key] for key in ('purelib',
                                                           'platlib')):
        folders += glob.glob(os.path.join(site, 'nvidia', '*', 'lib'))
        folders += glob.glob(os.path.join(site, 'nvidia', 'cu*', 'lib'))
    return [f for f in folders if os.path.isdir(f)]


def _link_cuda_names(folder):
    """Symlinks in `folder` from the plain names to the versioned ones."""
    os.makedirs(folder, exist_ok=True)
    linked, used = {}, []
    for plain, pattern in CUDA_NAMES.items():
        for candidate_folder in _search_folders():
            found = sorted(glob.glob(os.path.join(candidate_folder, pattern)),
                           key=len)
            if found:
                _relink(os.path.join(folder, plain), found[0])
                linked[plain] = found[0]
                used.append(candidate_folder)
                break
    missing = sorted(set(CUDA_NAMES) - set(linked))
    # NVRTC loads its builtins library from its own folder by name
    return {'linked': linked, 'missing': missing,
            'folders': sorted(set(used))}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    make = commands.add_parser('build', help='assemble the bundle here')
    make.add_argument('--out', default=DEFAULT_BUNDLE)
    make.add_argument('--python-version', default='3.12',
                      help='the GPU machine\'s Python (default 3.12)')
    setup = commands.add_parser('install', help='install it there')
    setup.add_argument('bundle', nargs='?', default=DEFAULT_BUNDLE)
    args = parser.parse_args(argv)
    if args.command == 'build':
        build(args.out, args.python_version)
    else:
        install(args.bundle)
    return 0


if __name__ == '__main__':
    sys.exit(main())
