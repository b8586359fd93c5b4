"""In-process fakes of the services the bridge talks to, for its tests."""

from tests.fakes.github import (
    Dispatch,
    FakeGitHub,
    Minted,
    Run,
    RunReads,
    Seen,
    Workflow,
    WorkflowDispatch,
)

__all__ = [
    "Dispatch",
    "FakeGitHub",
    "Minted",
    "Run",
    "RunReads",
    "Seen",
    "Workflow",
    "WorkflowDispatch",
]
