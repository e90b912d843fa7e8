"""Lightweight in-process concurrent programming.

A drop-in replacement for upstream greenlet in which every greenlet runs
on a C stack of its own, so a switch costs the same at any stack depth.
"""

__version__ = "3.5.6.1"

from ._greenlet import _C_API  # noqa: F401  (read by PyGreenlet_Import)
from ._greenlet import CLOCKS_PER_SEC
from ._greenlet import GREENLET_USE_CONTEXT_VARS
from ._greenlet import GREENLET_USE_GC
from ._greenlet import GREENLET_USE_TRACING
from ._greenlet import GreenletExit
from ._greenlet import enable_optional_cleanup
from ._greenlet import error
from ._greenlet import get_clocks_used_doing_optional_cleanup
from ._greenlet import get_default_stack_size
from ._greenlet import getcurrent
from ._greenlet import gettrace
from ._greenlet import greenlet
from ._greenlet import set_default_stack_size
from ._greenlet import settrace

__all__ = [
    "__version__",
    "_C_API",
    "GreenletExit",
    "error",
    "getcurrent",
    "greenlet",
    "gettrace",
    "settrace",
]
