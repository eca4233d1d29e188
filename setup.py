import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
STARTUP_HOOK = 'parmesan_compat.pth'


class BuildWithStartupHook(build_py):
    """Ship ``parmesan_compat.pth`` at the root of site-packages.

    Python runs it at start-up, so the stack fixes in ``parmesan_compat``
    take effect even when the user imports Theano before Parmesan.
    """

    def run(self):
        super().run()
        self.copy_file(os.path.join(HERE, STARTUP_HOOK),
                       os.path.join(self.build_lib, STARTUP_HOOK),
                       preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return (super().get_outputs(include_bytecode) +
                [os.path.join(self.build_lib, STARTUP_HOOK)])


class _WriteStartupHook:
    """Wrap an editable-install strategy so its wheel carries the hook too."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        with open(os.path.join(HERE, STARTUP_HOOK)) as hook:
            wheel.writestr(STARTUP_HOOK, hook.read())

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


class EditableWithStartupHook(editable_wheel):
    """``pip install -e .`` installs the start-up hook as well."""

    def _select_strategy(self, *args, **kwargs):
        return _WriteStartupHook(super()._select_strategy(*args, **kwargs))


with open(os.path.join(HERE, 'README.rst')) as readme:
    long_description = readme.read()

setup(
    name='Parmesan',
    version='0.2.0',
    description='Variational and semi-supervised neural network layers '
                'for Lasagne',
    long_description=long_description,
    long_description_content_type='text/x-rst',
    license='MIT',
    packages=find_packages(include=['parmesan', 'parmesan.*']),
    py_modules=['parmesan_compat'],
    cmdclass={'build_py': BuildWithStartupHook,
              'editable_wheel': EditableWithStartupHook},
    # Theano 1.0.5 does not build on Python 3.12; numpy 1.26 needs >= 3.9.
    python_requires='>=3.9,<3.12',
    install_requires=[
        'Theano==1.0.5',
        'Lasagne==0.1',
        'numpy>=1.23.5,<2',
        'scipy',
        'matplotlib',
        # Lasagne 0.1 imports pkg_resources, removed in setuptools 82.
        'setuptools<82',
    ],
    extras_require={'test': ['pytest'], 'benchmark': ['torch']},
)
