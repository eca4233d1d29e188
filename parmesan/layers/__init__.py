"""Lasagne layers: sampling, flows, normalisation, ladder, categorical,
training-pass noise, and small helpers (list index, clip, zeros)."""
from .sample import *  # noqa: F401,F403
from .flow import *  # noqa: F401,F403
from .normalize import *  # noqa: F401,F403
from .ladder import *  # noqa: F401,F403
from .categorical import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .special import *  # noqa: F401,F403
