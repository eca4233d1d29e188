"""Parmesan: variational and semi-supervised layers for Lasagne."""
import parmesan_compat

parmesan_compat.install()

from . import distributions, layers, nonlinearities, utils  # noqa: E402

__version__ = '0.2.0'
