"""A bridge under gunicorn killed with -9 while it follows a run resumes following it
once started again. The rest of following runs and notifying is in
tests/bridge/flows/test_runs.py."""

from __future__ import annotations

import json

from harness.wait import wait_until
from tests.bridge.e2e.test_delivery_http import flat, send
from tests.bridge.flows.test_runs import HOOK_SECRET, RUN_NAME, runs_config
from tests.fakes.receivers import Receiver


def _runs(bridge, event_id):
    from bridge.store import open_store

    store = open_store(f"sqlite:///{bridge.workdir}/bridge.db")
    try:
        return [r for d in store.get_event(event_id).deliveries for r in d.runs]
    finally:
        store.close()


def test_a_killed_bridge_resumes_following_its_runs_after_a_restart(start_bridge, fake_github):
    fake_github.add_workflow(
        "acme/churn-svc", types=["DEPLOY_MODEL"], run_name=RUN_NAME, queued_for=None
    )
    with Receiver("slack") as slack, Receiver("generic") as hook:
        bridge = start_bridge(env={"HOOK_SECRET": HOOK_SECRET}, **runs_config(slack, hook))
        event_id = send(bridge, flat(4))
        (run,) = wait_until(lambda: _runs(bridge, event_id), what="the run to be found")
        bridge.kill9()
        fake_github.finish_run(run.run_id, "success")
        bridge.start()
        (message,) = slack.wait_for(1, timeout=60)
        assert "Workflow run succeeded" in json.dumps(message.payload)
