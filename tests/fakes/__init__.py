"""In-process fakes of the services the bridge talks to, for its tests.

The package exports what :mod:`tests.fakes.github` exports.
"""

from tests.fakes.github import *  # noqa: F403
from tests.fakes.github import __all__ as __all__
