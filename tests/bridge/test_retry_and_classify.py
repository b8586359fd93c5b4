import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.config.model import DeliveryConfig
from bridge.delivery.github import classify, github_message
from bridge.delivery.retry import backoff, decide
from bridge.errors import PermanentDeliveryError, TransientDeliveryError
from bridge.store.models import Claimed

NOW = 1_700_000_000.0


def claimed(round_attempts=1, started=NOW):
    return Claimed("dlv_1", "evt_1", "a/b", "E", "{}", round_attempts, round_attempts, started)


def test_backoff_grows_from_about_five_seconds_to_the_cap():
    waits = [backoff(n, 5, 3600, lambda: 0.5) for n in range(1, 15)]
    assert waits[0] == 5
    assert waits[1] == 10 and waits[2] == 20
    assert waits[-1] == 3600
    assert backoff(1, 5, 3600, lambda: 0.0) == pytest.approx(4)
    assert backoff(1, 5, 3600, lambda: 1.0) == pytest.approx(6)


def test_decide_delivered_dead_and_retry():
    cfg = DeliveryConfig()
    assert decide(claimed(), None, NOW, cfg, lambda: 0.5).state == "delivered"
    dead = decide(
        claimed(),
        PermanentDeliveryError("GitHub answered 404: Not Found", 404),
        NOW,
        cfg,
        lambda: 0.5,
    )
    assert dead.state == "dead" and "Not Found" in dead.reason
    retry = decide(claimed(), TransientDeliveryError("502", 502), NOW, cfg, lambda: 0.5)
    assert retry.state == "queued" and retry.due_at == NOW + 5


def test_github_times_are_lower_bounds():
    cfg = DeliveryConfig()
    err = TransientDeliveryError("limited", 403, not_before=NOW + 900)
    d = decide(claimed(), err, NOW, cfg, lambda: 0.5)
    assert d.state == "queued" and d.due_at == NOW + 900


def test_gives_up_after_max_attempts_or_max_age():
    cfg = DeliveryConfig(max_attempts=3, max_age=60)
    assert decide(claimed(3), TransientDeliveryError("x"), NOW, cfg, lambda: 0.5).state == "dead"
    late = decide(claimed(1, started=NOW - 58), TransientDeliveryError("x"), NOW, cfg, lambda: 0.5)
    assert late.state == "dead" and "max_age" in late.reason


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_permanent_statuses(status):
    with pytest.raises(PermanentDeliveryError) as exc:
        classify(status, {}, '{"message": "Nope"}', NOW)
    assert "Nope" in exc.value.message and exc.value.status == status


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_transient_statuses(status):
    with pytest.raises(TransientDeliveryError):
        classify(status, {}, "", NOW)


def test_403_permission_is_permanent_with_hint():
    with pytest.raises(PermanentDeliveryError) as exc:
        classify(
            403,
            {"x-accepted-github-permissions": "contents=write"},
            '{"message": "Resource not accessible by integration"}',
            NOW,
        )
    assert "contents=write" in exc.value.message


def test_403_rate_limits_are_transient_until_reset_or_retry_after():
    with pytest.raises(TransientDeliveryError) as exc:
        classify(
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 600)},
            '{"message": "API rate limit exceeded"}',
            NOW,
        )
    assert exc.value.not_before == int(NOW) + 600
    with pytest.raises(TransientDeliveryError) as exc:
        classify(403, {"retry-after": "30"}, '{"message": "secondary rate limit"}', NOW)
    assert exc.value.not_before == NOW + 30
    with pytest.raises(TransientDeliveryError) as exc:
        classify(403, {}, '{"message": "You have exceeded a secondary rate limit"}', NOW)
    assert exc.value.not_before == NOW + 60
    with pytest.raises(TransientDeliveryError) as exc:
        classify(429, {}, "", NOW)
    assert exc.value.not_before == NOW + 60


def test_success_and_message_extraction():
    assert classify(204, {}, "", NOW) is None
    msg = github_message('{"message": "Validation Failed", "errors": [{"message": "No more"}]}')
    assert msg == "Validation Failed: No more"
    assert github_message("<html>oops</html>") == "<html>oops</html>"


# -- a GitHub that answers run reads oddly -----------------------------------------------

_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
ODD = _SCALAR | st.lists(_SCALAR, max_size=3) | st.dictionaries(st.text(max_size=12), _SCALAR)
RUNLIKE = st.fixed_dictionaries(
    {"id": st.integers(-5, 2**64) | st.booleans() | st.text(max_size=5)},
    optional={
        k: ODD
        for k in (
            "name",
            "path",
            "html_url",
            "status",
            "conclusion",
            "created_at",
            "updated_at",
            "display_title",
        )
    },
)


@given(st.one_of(ODD, st.fixed_dictionaries({"workflow_runs": st.lists(RUNLIKE | ODD)})))
def test_any_listing_github_sends_yields_only_well_formed_runs(answer):
    client = _client_answering(answer)
    page = client.list_runs("acme/svc", "repository_dispatch", 0.0, None)
    runs, objects = page.runs, page.objects
    assert len(runs) == len(objects)
    for r in runs:
        assert isinstance(r.run_id, int) and r.run_id > 0
        for v in (r.workflow, r.html_url, r.status, r.conclusion):
            assert v is None or isinstance(v, str)


@given(RUNLIKE | ODD)
def test_a_run_read_is_a_run_or_a_transient_error(answer):
    client = _client_answering(answer)
    try:
        run, _ = client.get_run("acme/svc", 7, None)
    except TransientDeliveryError:
        return
    assert run is not None and isinstance(run.run_id, int)


def _client_answering(data):
    import requests

    from bridge.delivery.github import GitHubClient

    class Canned(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            resp = requests.Response()
            resp.status_code = 200
            resp.raw = io.BytesIO(json.dumps(data).encode())  # read as a stream, as sent
            resp.headers["Content-Type"] = "application/json"
            resp.request = request
            return resp

        def close(self):
            pass

    class Token:
        def token_for(self, repository):
            return "t"

        def invalidate(self, repository):
            pass

    session = requests.Session()
    session.mount("https://", Canned())
    return GitHubClient("https://api.github.com", Token(), session, 5.0, lambda: 0.0)


@pytest.mark.parametrize("reset", ["nan", "NaN", "-nan"])
def test_a_rate_limit_reset_that_is_not_a_number_waits_the_default(reset):
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    with pytest.raises(TransientDeliveryError) as caught:
        classify(403, headers, '{"message": "API rate limit exceeded"}', NOW)
    assert caught.value.not_before == NOW + 60  # never NaN, which no time compares with
