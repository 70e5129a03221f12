"""The relay's C extension (orchestra/daemon/_forward.c); everything else is in pyproject.toml.

Optional: where it cannot be built (no compiler, no Python headers) the package installs
without it and the relay runs its Python twin (orchestra/daemon/forward.py). Linux only:
it is an epoll loop.
"""

import sys

from setuptools import Extension, setup

forward = Extension(
    "orchestra.daemon._forward",
    sources=["orchestra/daemon/_forward.c"],
    optional=True,
)
setup(ext_modules=[forward] if sys.platform.startswith("linux") else [])
