"""Lasagne layers: sampling, flows, normalisation, ladder, categorical,
training-pass noise."""
from .sample import *  # noqa: F401,F403
from .flow import *  # noqa: F401,F403
from .normalize import *  # noqa: F401,F403
from .ladder import *  # noqa: F401,F403
from .categorical import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
