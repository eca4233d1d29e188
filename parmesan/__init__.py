"""Parmesan: variational and semi-supervised layers for Lasagne."""
import parmesan_compat

parmesan_compat.install()

# The library; the experiments (parmesan.experiments) load on demand.
from . import (datasets, distributions, init, layers,  # noqa: E402,F401
               nonlinearities, objectives, ops, updates, utils)

__version__ = '0.2.0'
