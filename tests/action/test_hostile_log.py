"""Untrusted text never becomes a workflow command, nor Markdown, through ``main(environ)``.

The runner splits the step's output at CR and LF, obeys ``::name ...::`` at a line's
start (after white space) and the legacy ``##[name ...]`` anywhere in a line. Text from
the event, W&B's answers and the manifest is generated here with such commands in it;
every line the action prints must still be one of its own commands or plain text.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.fake_wandb import FakeWandb
from tests.action.harness import API_KEY, Run, Runner

INJECTIONS = [
    "##[set-output name=pwned]1",
    "##[add-mask]pwned",
    "::set-output name=pwned::1",
    "\n::add-mask::pwned\n",
    "\r::error title=pwned::x",
    "\r\n  ::stop-commands::pwned",
    "%0A::warning::pwned",
    "::",
    "#",
    "[pwned](https://evil.example/x)",
    "![pwned](https://evil.example/i.png)",
    "<img src=x onerror=alert(1)>",
    "<a href='https://evil.example'>pwned</a>",
    "https://evil.example/pwned",
    "a|b|pwned",
    "`pwned`",
    "*pwned* _x_ ~~y~~",
    "\\",
    "&lt;pwned&gt;",
]
HOSTILE = st.lists(
    st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=6)), min_size=1, max_size=4
).map("".join)
# What can be an entity, project, collection or alias in a reference: no / : or space.
NAME = HOSTILE.map(lambda s: re.sub(r"[/:\s\x00]", "", s)).filter(bool)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_OURS = {"add-mask", "error", "warning", "group", "endgroup"}
_SERIAL = itertools.count()


def assert_inert(stdout: str) -> None:
    """Every line the runner would read is plain text or one of the action's commands."""
    for line in re.split(r"\r\n|\r|\n", stdout):
        assert "##[" not in line, line
        if not line.lstrip().startswith("::"):
            continue
        head = re.match(r"::([^ :]+)( [^:]*)?::", line)
        assert head and line.startswith("::"), line
        assert head.group(1) in _OURS, line
        assert "pwned" not in (head.group(2) or ""), line
        if head.group(1) == "add-mask":
            assert line == f"::add-mask::{API_KEY}", line


def assert_plain_markdown(markdown: str) -> None:
    """The summary renders to headings, paragraphs, a two-column table and bold text."""
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)
    tags = set(re.findall(r"<(\w+)", html))
    assert tags <= {"h3", "p", "strong", "table", "thead", "tbody", "tr", "th", "td"}, html
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        assert len(re.findall(r"<t[dh]", row)) == 2, row


def _check(run: Run) -> None:
    assert run.code in (0, 1), run.stdout
    assert "Internal error" not in run.stdout, run.stdout
    assert_inert(run.stdout)
    if run.summary:
        assert_plain_markdown(run.summary)


@SETTINGS
@given(event_type=HOSTILE, author=HOSTILE)
def test_event_fields_in_a_skip(runner: Runner, event_type: str, author: str) -> None:
    runner.dispatch("DEPLOY", event_type=event_type, event_author=author)
    run = runner.run(event_types="SOMETHING_ELSE")
    _check(run)
    assert run.code == 0 and run.outputs["event-author"] == author.strip()


@SETTINGS
@given(ref=HOSTILE)
def test_an_artifact_reference_that_cannot_be_parsed(runner: Runner, ref: str) -> None:
    runner.dispatch("DEPLOY", artifact_version_string=ref)
    _check(runner.run())


@SETTINGS
@given(
    collection=NAME,
    aliases=st.lists(HOSTILE, min_size=1, max_size=3),
    key=NAME,
    meta=HOSTILE,
    description=HOSTILE,
    author=HOSTILE,
)
def test_names_and_metadata_from_wandb(
    tmp_path_factory: pytest.TempPathFactory,
    fake: FakeWandb,
    collection: str,
    aliases: list[str],
    key: str,
    meta: str,
    description: str,
    author: str,
) -> None:
    runner = Runner(tmp_path_factory.mktemp("job"), fake.url)
    collection += f"-{next(_SERIAL)}"  # each example its own collection, version v0
    fake.store.add_artifact(
        "acme",
        "churn",
        collection,
        {f"files/{key if key not in ('.', '..') else 'x'}": meta.encode()},
        aliases=tuple(aliases),
        metadata={meta: meta},
        description=description,
    )
    runner.dispatch(
        "DEPLOY", artifact_version_string=f"acme/churn/{collection}:v0", event_author=author
    )
    run = runner.run(path="out")
    _check(run)
    if run.code == 0:
        assert json.loads(run.outputs["metadata"]) == {meta: meta}
        assert run.outputs["description"] == description
    # The alias filter names the version's aliases when it skips.
    _check(runner.run(path="out", aliases="none-of-those"))


@SETTINGS
@given(message=HOSTILE)
def test_wandb_error_messages(runner: Runner, fake: FakeWandb, message: str) -> None:
    fake.answers["ArtifactMembership"] = (200, {"errors": [{"message": message}]})
    run = runner.run()
    _check(run)
    assert run.code == 1


def test_the_examples_from_the_issue(runner: Runner, fake: FakeWandb) -> None:
    runner.dispatch("X", event_type="X ##[set-output name=skipped]false")
    run = runner.run(event_types="LINK_MODEL")
    assert "Skipping: event type X # #[set-output name=skipped]false is not one of" in run.stdout
    runner.dispatch("X", artifact_version_string="acme/proj/model:##[add-mask]tail")
    run = runner.run()
    assert "Resolving acme/proj/model:# #[add-mask]tail at" in run.stdout
    assert_inert(run.stdout)


def test_the_summary_escapes_markdown(runner: Runner, fake: FakeWandb) -> None:
    fake.store.add_artifact("acme", "churn", "m", {"a.txt": b"a"}, aliases=("a|b", "<b>x</b>"))
    runner.dispatch(
        "X", artifact_version_string="acme/churn/m:v0", event_author="[me](https://e.example)"
    )
    run = runner.run()
    assert run.code == 0, run.stdout
    assert_plain_markdown(run.summary)
    assert "| event | X by [me](https://e.example) |" in run.summary_text
    assert "aliases: a|b, <b>x</b>" in run.summary_text


def test_an_empty_summary_file_is_not_needed(runner: Runner, tmp_path: Path) -> None:
    env = runner.environ(artifact="not a ref")
    del env["GITHUB_STEP_SUMMARY"]
    run = runner.run(env)
    assert run.code == 1 and run.summary == ""
