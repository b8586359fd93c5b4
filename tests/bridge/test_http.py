"""Outbound HTTP against servers that answer slowly or without end: every request ends by
its total deadline however the bytes arrive, and no answer is read past its cap."""

from __future__ import annotations

import socket
import time

import pytest

from bridge import http
from bridge.config.secrets import Secret
from bridge.delivery.credentials import StaticToken
from bridge.delivery.github import READ_CAP, GitHubClient
from bridge.errors import OutboundError, TransientDeliveryError, WandbError
from bridge.notify.send import NotifySender
from bridge.wandb.client import ANSWER_CAP, GraphQL
from tests.fakes.hostile import Hostile


@pytest.mark.parametrize("mode", ["trickle_headers", "trickle_body"])
def test_a_trickling_server_does_not_outlast_the_deadline(mode):
    # pace 0.2 s a byte: each read gets a byte well within the 5 s read timeout, so only a
    # total deadline ends it (10,000 header bytes would take over half an hour)
    with Hostile(mode, pace=0.2) as server:
        session = http.new_session()
        with pytest.raises(OutboundError) as caught:
            http.fetch(session, "POST", server.url + "/x", timeout=1.0, data=b"{}", cap=1 << 20)
        assert caught.value.timed_out
        (seen,) = server.wait_for(1, closed=True)
        assert seen.closed_at is not None  # the bridge hung up; nothing holds the socket


def test_an_endless_body_is_read_up_to_the_cap_and_no_further():
    with Hostile("endless", status=200) as server:
        reply = http.fetch(http.new_session(), "GET", server.url, timeout=30, cap=100_000)
        assert reply.status == 200 and len(reply.body) == 100_000 and not reply.complete
        (seen,) = server.wait_for(1, closed=True)
    assert seen.sent < 32 * 1024 * 1024  # the rest was never taken (socket buffers aside)
    with pytest.raises(ValueError):
        reply.json()


def test_one_deadline_covers_every_request_of_its_block():
    with Hostile("ok") as fast, Hostile("trickle_headers", pace=0.2) as slow:
        session = http.new_session()
        started = time.monotonic()
        with http.deadline(1.5), pytest.raises(OutboundError):
            assert http.fetch(session, "GET", fast.url, timeout=60).status == 200
            http.fetch(session, "GET", slow.url, timeout=60)  # its own 60 s do not count
        assert time.monotonic() - started < 30  # not 60 s: the block's deadline ended it


def test_a_pooled_connection_outlives_the_deadline_of_the_request_that_opened_it():
    with Hostile("ok") as server:
        session = http.new_session()
        assert http.fetch(session, "GET", server.url, timeout=0.3).status == 200
        time.sleep(0.5)  # that deadline has passed; the connection went back to the pool
        assert http.fetch(session, "GET", server.url, timeout=30).status == 200
        assert len(server.requests) == 2


def test_github_reads_are_capped_and_a_cut_answer_is_a_transient_failure():
    with Hostile("endless", status=200) as server:
        client = GitHubClient(server.url, StaticToken("t"), http.new_session(), 30, time.time)
        with pytest.raises(TransientDeliveryError, match="larger than"):
            client.get_run("acme/svc", 7, None)
        (seen,) = server.wait_for(1, closed=True)
    assert seen.sent < READ_CAP + 32 * 1024 * 1024


def test_a_dispatch_answered_2xx_with_an_endless_body_is_delivered_not_resent():
    # GitHub accepted it: reading the rest could only turn "sent" into "send again"
    with Hostile("endless", status=204) as server:
        client = GitHubClient(server.url, StaticToken("t"), http.new_session(), 30, time.time)
        assert client.dispatch("acme/svc", b'{"event_type":"E"}') == 204
        assert len(server.requests) == 1


def test_a_github_that_trickles_its_204_is_a_transient_failure_by_the_deadline():
    with Hostile("trickle_headers", pace=0.2) as server:
        client = GitHubClient(server.url, StaticToken("t"), http.new_session(), 1.0, time.time)
        with pytest.raises(TransientDeliveryError, match="within 1 s"):
            client.dispatch("acme/svc", b'{"event_type":"E"}')


def test_wandb_answers_are_capped_and_bounded_in_time():
    with Hostile("endless", status=200) as server:
        gql = GraphQL(server.url, Secret("k" * 40), timeout=30)
        with pytest.raises(WandbError, match="larger than"):
            gql.execute("list automations", "Q", "query Q { a }", {}, "fix it")
        (seen,) = server.wait_for(1, closed=True)
    assert seen.sent < ANSWER_CAP + 32 * 1024 * 1024
    with Hostile("trickle_body", pace=0.2) as server:
        gql = GraphQL(server.url, Secret("k" * 40), timeout=1.0)
        with pytest.raises(WandbError, match="did not answer within 1 s"):
            gql.execute("list automations", "Q", "query Q { a }", {}, "fix it")


def test_a_notify_receiver_with_an_endless_error_page_fails_with_its_start():
    from bridge.config.model import Notifier
    from bridge.store.models import Claimed

    with Hostile("endless", status=500) as server:
        n = Notifier("ops", ("run_failed",), "webhook", Secret(server.url))
        sender = NotifySender({"ops": n}, http.new_session(), 30, time.time)
        claimed = Claimed("dlv_1", "evt_1", "a/b", "E", "{}", 1, 1, 0.0, "notify", notifier="ops")
        with pytest.raises(TransientDeliveryError) as caught:
            sender.send(claimed)
        assert caught.value.status == 500 and len(caught.value.message) < 1000
        (seen,) = server.wait_for(1, closed=True)
    assert seen.sent < 32 * 1024 * 1024


def _connection_over(sock):
    conn = http._Watched("127.0.0.1", 9)  # never connects: the test gives it a socket
    conn.watched_sock = sock
    return conn


def test_an_answer_waiting_at_the_deadline_gets_one_grace_then_the_socket_is_cut():
    # a process frozen past its deadline wakes up with GitHub's answer in the socket
    ours, theirs = socket.socketpair()
    with ours, theirs:
        conn = _connection_over(ours)
        d = http.Deadline(0)
        d.watch(conn)
        theirs.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        assert d.expire() is False and not d.expired  # not cut: the answer is there
        assert ours.recv(100).startswith(b"HTTP/1.1 204")
        theirs.sendall(b"x")  # a trickler gets the grace once, never twice
        assert d.expire() is True and d.expired
        ours.recv(1)
        assert ours.recv(1) == b""  # shut


def test_a_deadline_never_cuts_a_connection_another_request_has_taken():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        conn = _connection_over(ours)
        first, second = http.Deadline(0), http.Deadline(60)
        first.watch(conn)
        first.release(conn)  # its request ended; the connection went back to the pool
        second.watch(conn)
        assert first.expire() is True
        theirs.sendall(b"still open")
        assert ours.recv(100) == b"still open"


def test_a_retry_after_that_only_unicode_calls_digits_is_no_wait():
    """Headers arrive as Latin-1: '²' (0xB2) passes str.isdigit() but not float()."""
    from bridge.http import retry_not_before

    assert retry_not_before({"retry-after": "\u00b2"}, 1000.0) is None
