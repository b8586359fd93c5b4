"""The console's routes: sign-in, the events list, one event, replay, and Now.

Every state-changing request is a POST carrying the CSRF token from a page of the
console itself (``auth.check_post``); each answers with a redirect (post/redirect/get)
that names what it did in ``?done=``.
"""

from __future__ import annotations

import logging

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask.wrappers import Response as FlaskResponse
from werkzeug.wrappers import Response

from bridge.console import auth, pages
from bridge.errors import NotFound, RequestRefused, StoreUnavailable
from bridge.logs import fields
from bridge.notify.links import run_link, web_origin
from bridge.services import services
from bridge.states import DeliveryState

log = logging.getLogger(__name__)
bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)
OFF = (
    "The console is off. Set admin.tokens in the bridge's config (for example "
    "tokens: [{env: BRIDGE_ADMIN_TOKEN}]) and restart the bridge to turn it on."
)
THROTTLED = "Too many wrong tokens from this address. Wait {wait} seconds, then try again."
WRONG = "That is not one of the bridge's admin tokens."
FAILED = "The bridge failed on this page; its log says why. Try again in a moment."
TITLES = {
    400: "Not a request the console understands",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
}


@bp.before_request
def console_on() -> None:
    if not services().config.admin_tokens:
        raise RequestRefused(404, "console_disabled", OFF)


def error_page(status: int, message: str) -> FlaskResponse:
    """An error as an HTML page (the app's one error handler calls it for the console)."""
    title = TITLES.get(status, "Something went wrong")
    if status >= 500:  # the app's own words speak to W&B, which retries a webhook
        message = FAILED
    html = render_template("console/error.html", status=status, title=title, message=message)
    return make_response(html, status)


# -- sign-in and sign-out ----------------------------------------------------------------


def _sign_in_page(status: int = 200, error: str | None = None) -> Response:
    token = auth.sign_in_csrf()
    notice = pages.done_notice(request.args.get("done"))
    html = render_template("console/sign_in.html", csrf=token, error=error, notice=notice)
    resp = make_response(html, status)
    auth.keep_sign_in_csrf(resp, token)
    return resp


@bp.post("/sign-in")
def sign_in() -> Response:
    svc = services()
    auth.check_post(request.cookies.get(auth.CSRF_COOKIE))
    address, now = auth.address(), svc.clock()
    wait = svc.store.console.sign_in_blocked(address, now)
    if wait is not None:
        resp = _sign_in_page(429, THROTTLED.format(wait=max(1, round(wait))))
        resp.headers["Retry-After"] = str(max(1, round(wait)))
        return resp
    label = auth.match(svc.config.admin_tokens, request.form.get("token", "").encode("utf-8"))
    if label is None:
        svc.store.console.sign_in_failed(address, now)
        log.warning("console sign-in refused", extra=fields(address=address))
        return _sign_in_page(401, WRONG)
    svc.store.console.sign_in_cleared(address)
    log.info("console sign-in", extra=fields(label=label))
    resp = redirect(url_for("console.events"), 303)
    auth.start(svc, label, resp)
    return resp


@bp.post("/sign-out")
def sign_out() -> Response:
    svc = services()
    signed_in = auth.current(svc)
    auth.check_post(signed_in.csrf if signed_in else None)
    resp = redirect(url_for("console.events", done="signed-out"), 303)
    if signed_in is not None:
        auth.end(svc, signed_in, resp)
    return resp


def _to_sign_in() -> Response:
    return redirect(url_for("console.events"), 303)


# -- pages ----------------------------------------------------------------------------


@bp.get("/")
def events() -> Response:
    svc = services()
    signed_in = auth.current(svc)
    if signed_in is None:
        return _sign_in_page()
    filters = pages.filters_from(request.args)
    before = request.args.get("before") or None
    if before is not None and pages.event_id(before) is None:
        raise RequestRefused(400, "invalid_parameter", "before must be an event id (evt_...)")
    page = svc.store.console.events(filters, before)
    if before is None and page.next_before is None:  # the page is all the filter shows
        dead = sum(d.state == DeliveryState.DEAD for e in page.events for d in e.deliveries)
    else:
        dead = svc.store.console.dead_count(filters)
    html = render_template(
        "console/events.html",
        signed_in=signed_in,
        page=page,
        filters=filters,
        values=pages.filter_values(filters),
        older=pages.query(filters, before=page.next_before) if page.next_before else None,
        dead=dead,
        states=tuple(DeliveryState),
        runs=pages.RUN_WORDS,
        notice=pages.done_notice(request.args.get("done")),
        p=pages,
    )
    return make_response(html)


@bp.get("/events/<event_id>")
def event(event_id: str) -> Response:
    svc = services()
    signed_in = auth.current(svc)
    if signed_in is None:
        return _to_sign_in()
    try:
        found = svc.store.get_event(event_id)
    except NotFound as exc:
        raise RequestRefused(404, "event_not_found", f"No event with id {event_id}.") from exc
    origin = web_origin(svc.config.github.api_url)
    html = render_template(
        "console/event.html",
        signed_in=signed_in,
        event=found,
        link=lambda url: run_link(origin, url),
        notice=pages.done_notice(request.args.get("done")),
        dead=DeliveryState.DEAD,
        p=pages,
    )
    return make_response(html)


@bp.get("/now")
def now() -> Response:
    svc = services()
    signed_in = auth.current(svc)
    if signed_in is None:
        return _to_sign_in()
    at = svc.clock()
    try:
        svc.store.check_writable(at)
        store_health = None
    except StoreUnavailable as exc:
        store_health = str(exc)
    html = render_template(
        "console/now.html",
        signed_in=signed_in,
        report=svc.store.console.now(at),
        at=at,
        store_health=store_health,
        budget_limit=svc.config.runs.max_requests_per_hour,
        config_text=pages.config_text(svc.config),
        p=pages,
    )
    return make_response(html)


# -- actions --------------------------------------------------------------------------


@bp.post("/deliveries/<delivery_id>/replay")
def replay(delivery_id: str) -> Response:
    svc = services()
    signed_in = auth.checked_post(svc)
    done = svc.store.console.replay_delivery(delivery_id, svc.clock(), signed_in.label)
    log.info(
        "console replay",
        extra=fields(delivery=delivery_id, label=signed_in.label, queued=done),
    )
    back = pages.event_id(request.form.get("event"))
    notice = f"replayed:{int(done)}"
    if back is None:
        return redirect(url_for("console.events", done=notice), 303)
    return redirect(url_for("console.event", event_id=back, done=notice), 303)


@bp.post("/replay-dead")
def replay_dead() -> Response:
    svc = services()
    signed_in = auth.checked_post(svc)
    filters = pages.filters_from(request.form)
    ids = svc.store.console.replay_dead(filters, svc.clock(), signed_in.label)
    log.info(
        "console replay of dead deliveries", extra=fields(count=len(ids), label=signed_in.label)
    )
    done = f"replayed:{len(ids)}"
    return redirect(url_for("console.events") + pages.query(filters, done=done), 303)
