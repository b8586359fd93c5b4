"""In-process fakes of the services the bridge talks to, for its tests."""

from tests.fakes.github import Dispatch, FakeGitHub, Minted, Seen

__all__ = ["Dispatch", "FakeGitHub", "Minted", "Seen"]
