"""Parmesan: variational and semi-supervised layers for Lasagne."""
import parmesan_compat

parmesan_compat.install()
# Before the first Theano import below: Parmesan's users get its speed
# defaults (float32, ...); see parmesan_compat for what and how to opt out.
parmesan_compat.enable_speed_defaults()

# The library; the experiments (parmesan.experiments) load on demand.
# The original Parmesan's modules (distributions, datasets, layers, utils,
# preprocessing) are attributes of the package, as they were there.
from . import (datasets, distributions, init, layers,  # noqa: E402,F401
               nonlinearities, objectives, ops, preprocessing, updates,
               utils)

__version__ = '0.2.0'
