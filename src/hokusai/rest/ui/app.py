"""The console's application, mounted by :func:`hokusai.rest.app.create_app` at ``/ui``.

Server-rendered pages (Jinja2, autoescaped) over the same components the REST routes use; no
script, no asset from another host (``Content-Security-Policy: default-src 'self'`` on every
answer). The API's ``Authorization`` header is not used here: a signed-in session is (see
:mod:`hokusai.rest.ui.session`), its key checked again on every request and rate-limited like
the API's. Every POST carries the session's CSRF token and, when the browser sends an Origin or
Referer, must come from this server. Scope decides what a page shows and what a POST may do:
webhook deliveries, attempts, redelivery and replay are the admin scope's, as in the API.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hokusai import errors
from hokusai.auth import ApiKey, scope_allows
from hokusai.registry.validation import normalize_contributor
from hokusai.rest.deps import Components
from hokusai.rest.threads import in_thread
from hokusai.rest.ui.figures import gain_of, higher_is_better, leaderboard, timestamp_ms
from hokusai.rest.ui.graphs import (
    Series,
    cumulative_series,
    lineage_graph,
    short_address,
    time_plot,
)
from hokusai.rest.ui.session import (
    COOKIE,
    COOKIE_PATH,
    PRE_COOKIE,
    PRE_SESSION_SECONDS,
    Session,
    SessionSigner,
    console_secret,
    is_revoked,
    revoke,
)

__all__ = ["CONTENT_SECURITY_POLICY", "PAGE_SIZE", "create_console"]

logger = logging.getLogger(__name__)

PREFIX: Final = "/ui"
PAGE_SIZE: Final = 50
HERE: Final = Path(__file__).parent
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
_SECURITY_HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
DELIVERY_STATES: Final = ("pending", "delivering", "delivered", "failed", "dead")
DELIVERIES_SHOWN: Final = 200
"""The newest deliveries the webhooks page lists (per state filter)."""
_HTTP_ERRORS: Final = {
    404: ("not_found", "There is no such page."),
    405: ("method_not_allowed", "This page does not take that method."),
}


class SignInRequiredError(Exception):
    """No valid session: the browser is sent to the sign-in page (the cookie is cleared)."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the signed-in key (as stored now) and the session's CSRF token."""

    key: ApiKey
    session: Session
    csrf: str

    @property
    def admin(self) -> bool:
        return scope_allows(self.key.scope, "admin")


class SecurityHeaders:
    """Add the console's security headers (CSP first) to every answer, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in {n for n, _ in _SECURITY_HEADERS}
                ]
                headers.extend(_SECURITY_HEADERS)
                if not str(scope.get("path", "")).startswith(f"{PREFIX}/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class Console:
    """The console's state: the components, the template environment, the session signer."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self.settings = components.settings
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            when=_when, short=short_address, quote=lambda value: quote(str(value), safe="/")
        )
        self.templates.globals.update(
            prefix=PREFIX,
            gain_of=gain_of,
            higher_is_better=higher_is_better,
            version_href=version_href,
        )
        self._signer: SessionSigner | None = None
        self._lock = threading.Lock()

    @property
    def signer(self) -> SessionSigner:
        """Built on first use: the secret may have to be read from, or created in, the
        project database."""
        with self._lock:
            if self._signer is None:
                secret = console_secret(self.settings, self.components.webhooks.engine)
                self._signer = SessionSigner(
                    secret, max_age_seconds=self.settings.console_session_hours * 3600
                )
            return self._signer

    def render(
        self,
        request: Request,
        template: str,
        *,
        viewer: Viewer | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            request=request, viewer=viewer, **context
        )
        return HTMLResponse(page, status_code=status_code)

    def limit(self, bucket: str) -> None:
        decision = self.components.limiter.hit(bucket)
        if not decision.allowed:
            raise errors.RateLimitedError(
                f"Rate limit exceeded ({decision.limit} requests); retry in "
                f"{decision.retry_after:.1f}s.",
                retry_after=decision.retry_after,
            )


def version_href(model_id: str) -> str:
    """The console page of ``name/version``."""
    return f"{PREFIX}/models/{quote(model_id, safe='/')}"


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _viewer(request: Request) -> Viewer:
    """The signed-in viewer, or :class:`SignInRequiredError` (sync: FastAPI runs it in its thread
    pool, since it reads the key from the project database)."""
    console = _console(request)
    signer = console.signer
    session = signer.session(request.cookies.get(COOKIE))
    if session is None or is_revoked(console.components.webhooks.engine, session.nonce):
        raise SignInRequiredError
    try:
        key = console.components.keys.get(session.key_id)
    except errors.ApiKeyNotFoundError:
        raise SignInRequiredError from None
    if not key.active:
        raise SignInRequiredError
    console.limit(f"key:{key.id}")
    return Viewer(key=key, session=session, csrf=signer.csrf_token(session.nonce))


ViewerDep = Annotated[Viewer, Depends(_viewer)]


def _admin(viewer: ViewerDep) -> Viewer:
    if not viewer.admin:
        raise errors.AdminKeyRequiredError(
            f"This API key has scope {viewer.key.scope!r}; this action needs 'admin'."
        )
    return viewer


AdminDep = Annotated[Viewer, Depends(_admin)]


def _own_host(request: Request) -> str:
    """The ``host[:port]`` the browser addressed (its Host header)."""
    return (request.headers.get("host") or request.url.netloc).strip().lower()


def _same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another host (Origin, else Referer);
    True when it says nothing (non-browser clients, privacy settings) — the CSRF token is
    checked either way. Only ``host[:port]`` is compared, not the scheme: behind a
    TLS-terminating proxy the browser sends ``Origin: https://host`` to a server that sees
    plain http, and the CSRF token, not this check, is the defence against forged forms."""
    own = _own_host(request)
    origin = request.headers.get("origin")
    if origin is not None:
        return urlsplit(origin.strip()).netloc.lower() == own
    referer = request.headers.get("referer")
    if referer:
        return urlsplit(referer.strip()).netloc.lower() == own
    return True


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (the first value of each field)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if not raw:
        return {}  # no field at all: no CSRF token either, refused as such
    if content_type != "application/x-www-form-urlencoded":
        raise errors.UnsupportedMediaTypeError(
            "The console's forms are sent as application/x-www-form-urlencoded."
        )
    body = raw.decode("utf-8", errors="replace")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


async def _checked_form(request: Request, nonce: str | None) -> dict[str, str]:
    """The form of a POST whose origin and CSRF token are right; CsrfFailedError otherwise."""
    if not _same_origin(request):
        raise errors.CsrfFailedError("This form was sent from another site; it was refused.")
    fields = await _form(request)
    if not _console(request).signer.csrf_valid(nonce, fields.get("csrf")):
        raise errors.CsrfFailedError(
            "The form's CSRF token is missing or stale; reload the page and try again."
        )
    return fields


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _secure(request: Request) -> bool:
    """Whether the browser reached us over https: the request's own scheme, or — only with
    ``HOKUSAI_CONSOLE_TRUST_FORWARDED_PROTO`` — the proxy's ``X-Forwarded-Proto``."""
    if request.url.scheme == "https":
        return True
    if not _console(request).settings.console_trust_forwarded_proto:
        return False
    forwarded = request.headers.get("x-forwarded-proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"


def _session_cookie(request: Request, response: Response, value: str, max_age: float) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(max_age),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def _pre_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        value,
        max_age=int(PRE_SESSION_SECONDS),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def _forget(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def _when(value: Any) -> str:
    """A moment (epoch seconds, ms, or ISO text) as ``2026-12-01 09:15:02 UTC``."""
    if value is None or value == "":
        return "—"
    moment: datetime | None = None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    if moment is None:
        return str(value)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class _Page:
    """One page of a paged listing: which rows to ask for, and the pager's links."""

    number: int

    @classmethod
    def of(cls, raw: str | None) -> _Page:
        try:
            return cls(max(1, min(int(raw or 1), 1_000_000)))
        except ValueError:
            return cls(1)

    @property
    def offset(self) -> int:
        return (self.number - 1) * PAGE_SIZE

    def pager(self, path: str, total: int, **params: str | None) -> dict[str, Any]:
        """What the ``pager`` macro needs: this page, how many, and each page's link (the
        listing's other query parameters kept)."""

        def page_href(n: int) -> str:
            kept = {**params, "page": str(n)}
            return f"{PREFIX}{path}?" + urlencode({k: v for k, v in kept.items() if v})

        pages = max(1, math.ceil(total / PAGE_SIZE))
        return {"page": self.number, "pages": pages, "page_href": page_href}


def _query_text(raw: str | None) -> str:
    return (raw or "").strip()[:200]


def create_console(components: Components) -> ASGIApp:
    """The console as an ASGI application of its own (mounted at ``/ui``): its own error
    pages (HTML, not the API's JSON) and headers."""
    console = Console(components)
    ui = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    ui.state.console = console
    ui.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @ui.exception_handler(SignInRequiredError)
    async def sign_in_required(request: Request, _exc: SignInRequiredError) -> Response:
        if request.method != "GET":
            # A POST without a session is refused, never turned into a redirect that a
            # forged form could ride.
            response: Response = console.render(
                request,
                "error.html",
                viewer=None,
                status_code=401,
                status=401,
                code="unauthenticated",
                message="Sign in first.",
            )
        else:
            response = _redirect(f"{PREFIX}/sign-in")
        if COOKIE in request.cookies:
            _forget(request, response, COOKIE)
        return response

    @ui.exception_handler(errors.HokusaiError)
    async def hokusai_error(request: Request, exc: errors.HokusaiError) -> Response:
        status = errors.http_status_for(exc)
        message = exc.message
        if status >= 500:
            from hokusai.http.errors import server_error

            envelope = server_error(request, exc, status=status, code=exc.code)
            message = _envelope_message(envelope.body)
        response = console.render(
            request,
            "error.html",
            viewer=None,
            status_code=status,
            status=status,
            code=exc.code,
            message=message,
        )
        if isinstance(exc, errors.RateLimitedError):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response

    @ui.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own refusals (no such page, a method a page does not take) as pages.
        status = exc.status_code
        code, message = _HTTP_ERRORS.get(status, ("error", str(exc.detail)))
        response = console.render(
            request,
            "error.html",
            viewer=None,
            status_code=status,
            status=status,
            code=code,
            message=message,
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    _routes(ui, console)
    return SecurityHeaders(ui)


def _envelope_message(body: bytes | memoryview) -> str:
    import json

    try:
        return str(json.loads(bytes(body))["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return "Internal error."


def _routes(ui: FastAPI, console: Console) -> None:
    components = console.components
    registry = components.registry
    hooks = components.webhooks

    @ui.get("/", include_in_schema=False)
    def home() -> Response:
        return _redirect(f"{PREFIX}/models")

    # ---- sign-in ---------------------------------------------------------------------

    @ui.get("/sign-in", response_class=HTMLResponse)
    def sign_in_form(request: Request) -> Response:
        signer = console.signer
        if signer.session(request.cookies.get(COOKIE)) is not None:
            try:
                _viewer(request)
                return _redirect(f"{PREFIX}/models")
            except SignInRequiredError:
                pass
        nonce = signer.pre_session(request.cookies.get(PRE_COOKIE))
        cookie = None
        if nonce is None:
            nonce, cookie = signer.new_pre_session()
        response = console.render(
            request, "sign_in.html", viewer=None, csrf=signer.csrf_token(nonce), failure=None
        )
        if cookie is not None:
            _pre_cookie(request, response, cookie)
        return response

    @ui.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request) -> Response:
        signer = console.signer
        host = request.client.host if request.client else "unknown"
        nonce = signer.pre_session(request.cookies.get(PRE_COOKIE))
        fields = await _checked_form(request, nonce)
        key = await in_thread(_sign_in_key, console, fields.get("api_key", ""), host)
        if key is None:
            assert nonce is not None
            return console.render(
                request,
                "sign_in.html",
                viewer=None,
                status_code=401,
                csrf=signer.csrf_token(nonce),
                failure="That API key is not valid (unknown, malformed or revoked).",
            )
        _, value = signer.new_session(key.id)
        response = _redirect(f"{PREFIX}/models")
        _session_cookie(request, response, value, signer.max_age_seconds)
        _forget(request, response, PRE_COOKIE)
        logger.info("console: API key id=%s signed in", key.id)
        return response

    @ui.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        signer = console.signer
        engine = console.components.webhooks.engine
        session = signer.session(request.cookies.get(COOKIE))
        if session is None or await in_thread(is_revoked, engine, session.nonce):
            raise SignInRequiredError
        await _checked_form(request, session.nonce)
        await in_thread(revoke, engine, session, signer.max_age_seconds)
        logger.info("console: API key id=%s signed out", session.key_id)
        response = _redirect(f"{PREFIX}/sign-in")
        _forget(request, response, COOKIE)
        return response

    # ---- models ----------------------------------------------------------------------

    @ui.get("/models", response_class=HTMLResponse)
    def models_page(
        request: Request,
        viewer: ViewerDep,
        q: str | None = None,
        page: str | None = None,
        kind: str | None = None,
    ) -> Response:
        query = _query_text(q)
        at = _Page.of(page)
        chosen_kind = kind if kind in ("baseline", "improved") else None
        found, total = registry.search_models(
            query=query or None, kind=chosen_kind, offset=at.offset, limit=PAGE_SIZE
        )
        return console.render(
            request,
            "models.html",
            viewer=viewer,
            nav="models",
            versions=found,
            total=total,
            query=query,
            kind=chosen_kind,
            **at.pager("/models", total, q=query, kind=chosen_kind),
        )

    @ui.get("/models/{name}/{version}", response_class=HTMLResponse)
    def version_page(request: Request, viewer: ViewerDep, name: str, version: str) -> Response:
        info = registry.get_model(f"{name}/{version}")
        if info.get("model_type") is None:
            raise errors.ModelNotFoundError(f"{name}/{version} is not a Hokusai model.")
        return console.render(
            request,
            "version.html",
            viewer=viewer,
            nav="models",
            v=info,
            gain=gain_of(info),
            signature=_signature(info.get("signature")),
            mlflow=_mlflow_links(console.settings.resolved_tracking_uri, info),
            serving_alias=console.settings.console_serving_alias,
        )

    # ---- lineage ---------------------------------------------------------------------

    @ui.get("/lineage", response_class=HTMLResponse)
    def families_page(
        request: Request, viewer: ViewerDep, q: str | None = None, page: str | None = None
    ) -> Response:
        query = _query_text(q)
        at = _Page.of(page)
        found, total = registry.search_models(
            query=query or None, kind="baseline", offset=at.offset, limit=PAGE_SIZE
        )
        return console.render(
            request,
            "families.html",
            viewer=viewer,
            nav="lineage",
            baselines=found,
            total=total,
            query=query,
            **at.pager("/lineage", total, q=query),
        )

    @ui.get("/lineage/{name}/{version}", response_class=HTMLResponse)
    def lineage_page(request: Request, viewer: ViewerDep, name: str, version: str) -> Response:
        model_id = f"{name}/{version}"
        entries = registry.get_model_lineage(model_id)
        serving = console.settings.console_serving_alias
        graph = lineage_graph(entries, serving_alias=serving, href=version_href)
        metric, series = cumulative_series(entries)
        plot = time_plot(series, y_label=f"cumulative {metric}" if metric else "improvement")
        return console.render(
            request,
            "lineage.html",
            viewer=viewer,
            nav="lineage",
            model_id=model_id,
            entries=entries,
            graph=graph,
            plot=plot,
            metric=metric,
            serving_alias=serving,
        )

    # ---- contributors ----------------------------------------------------------------

    @ui.get("/contributors", response_class=HTMLResponse)
    def leaderboard_page(request: Request, viewer: ViewerDep) -> Response:
        improved, _ = registry.search_models(kind="improved")
        standings = leaderboard(improved)
        return console.render(
            request,
            "leaderboard.html",
            viewer=viewer,
            nav="contributors",
            standings=standings,
        )

    @ui.get("/contributors/{address}", response_class=HTMLResponse)
    def contributor_page(request: Request, viewer: ViewerDep, address: str) -> Response:
        checksum = normalize_contributor(address)
        versions = registry.get_contributor_models(checksum)
        standing = leaderboard(versions)
        verified: list[tuple[float, float]] = []
        claimed: list[tuple[float, float]] = []
        verified_sum = claimed_sum = 0.0
        for version in versions:
            moment = timestamp_ms(version)
            gain = gain_of(version)
            if moment is None or gain is None:
                continue
            if gain.verified:
                verified_sum += gain.bps if gain.accepted else 0
                verified.append((moment, verified_sum))
            else:
                claimed_sum += gain.bps
                claimed.append((moment, claimed_sum))
        series = []
        if claimed:
            series.append(Series("claimed (unverified), bps", "claimed", claimed))
        if verified:
            series.append(Series("verified (accepted), bps", "verified", verified))
        plot = time_plot(series, y_label="cumulative gain, bps")
        return console.render(
            request,
            "contributor.html",
            viewer=viewer,
            nav="contributors",
            address=checksum,
            versions=list(reversed(versions)),
            standing=standing[0] if standing else None,
            plot=plot,
        )

    # ---- webhooks --------------------------------------------------------------------

    @ui.get("/webhooks", response_class=HTMLResponse)
    def webhooks_page(
        request: Request,
        viewer: ViewerDep,
        state: str | None = None,
        requeued: str | None = None,
        replayed: str | None = None,
    ) -> Response:
        stats = hooks.outbox.stats()
        chosen = state if state in DELIVERY_STATES else None
        endpoints = deliveries = None
        if viewer.admin:
            endpoints = [e.public() for e in hooks.endpoints.list()]
            deliveries = hooks.outbox.deliveries(state=chosen, limit=DELIVERIES_SHOWN)
        since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        return console.render(
            request,
            "webhooks.html",
            viewer=viewer,
            nav="webhooks",
            stats=stats,
            states=DELIVERY_STATES,
            state=chosen,
            endpoints=endpoints,
            deliveries=deliveries,
            replay_since=since,
            shown=DELIVERIES_SHOWN,
            notice=_notice(requeued=requeued, replayed=replayed),
        )

    @ui.get("/webhooks/events/{event_id}", response_class=HTMLResponse)
    def event_page(
        request: Request, viewer: AdminDep, event_id: str, requeued: str | None = None
    ) -> Response:
        event = hooks.outbox.event(event_id)
        found = hooks.outbox.deliveries(event_id=event_id, limit=1000)
        attempts = {d["delivery_id"]: hooks.outbox.attempts(d["delivery_id"]) for d in found}
        return console.render(
            request,
            "event.html",
            viewer=viewer,
            nav="webhooks",
            event=event,
            deliveries=found,
            attempts=attempts,
            notice=_notice(requeued=requeued, replayed=None),
        )

    @ui.post("/webhooks/events/{event_id}/redeliver")
    async def redeliver(request: Request, event_id: str) -> Response:
        viewer = await in_thread(_viewer, request)
        await _checked_form(request, viewer.session.nonce)
        _admin(viewer)
        count = await in_thread(hooks.outbox.redeliver, event_id)
        if count and hooks.settings.webhook_background:
            hooks.background_sender().notify()
        logger.info("console: key id=%s redelivered event %s (%d)", viewer.key.id, event_id, count)
        return _redirect(f"{PREFIX}/webhooks/events/{quote(event_id)}?requeued={count}")

    @ui.post("/webhooks/endpoints/{endpoint_id}/replay")
    async def replay(request: Request, endpoint_id: str) -> Response:
        viewer = await in_thread(_viewer, request)
        fields = await _checked_form(request, viewer.session.nonce)
        _admin(viewer)
        since = _form_moment(fields.get("since"), "since")
        until = _form_moment(fields.get("until"), "until") if fields.get("until") else None
        count = await in_thread(hooks.replay, endpoint_id, since=since, until=until)
        logger.info("console: key id=%s replayed to %s (%d)", viewer.key.id, endpoint_id, count)
        return _redirect(f"{PREFIX}/webhooks?replayed={count}")


def _sign_in_key(console: Console, plaintext: str, host: str) -> ApiKey | None:
    """The active key ``plaintext`` is, counting the attempt against the caller's address."""
    console.limit(f"ip:{host}")
    key = console.components.keys.authenticate(plaintext.strip())
    if key is not None:
        console.limit(f"key:{key.id}")
    return key


def _form_moment(raw: str | None, name: str) -> datetime:
    """A ``datetime-local`` field (UTC) as an aware datetime."""
    try:
        moment = datetime.fromisoformat((raw or "").strip())
    except ValueError:
        raise errors.ValidationError(
            f"{name} must be a date and time such as 2026-12-01T09:00 (UTC)."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _notice(*, requeued: str | None, replayed: str | None) -> str | None:
    if requeued is not None and requeued.isdigit():
        n = int(requeued)
        return f"{n} deliver{'y' if n == 1 else 'ies'} queued again."
    if replayed is not None and replayed.isdigit():
        n = int(replayed)
        return f"{n} deliver{'y' if n == 1 else 'ies'} queued by the replay."
    return None


def _signature(text: str | None) -> dict[str, Any] | None:
    """The MLflow signature (its JSON text) as inputs/outputs/params column lists."""
    if not text:
        return None
    import json

    try:
        raw = json.loads(text)
    except ValueError:
        return {"raw": text}
    result: dict[str, Any] = {"raw": None}
    for part in ("inputs", "outputs", "params"):
        value = raw.get(part) if isinstance(raw, Mapping) else None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        result[part] = [
            {
                "name": str(col.get("name", "")) if isinstance(col, Mapping) else "",
                "type": _column_type(col),
                "required": col.get("required", True) if isinstance(col, Mapping) else True,
            }
            for col in (value or [])
        ]
    return result


def _column_type(column: Any) -> str:
    if not isinstance(column, Mapping):
        return str(column)
    kind = column.get("type", "")
    if kind == "tensor":
        spec = column.get("tensor-spec") or {}
        return f"tensor {spec.get('dtype', '')} {spec.get('shape', '')}".strip()
    return str(kind)


def _mlflow_links(tracking_uri: str, info: Mapping[str, Any]) -> dict[str, str | None]:
    """Links into MLflow's UI when the tracking URI is a server (http or https); otherwise
    none (the model URI is shown as text)."""
    base = tracking_uri.rstrip("/")
    if not base.startswith(("http://", "https://")):
        return {"version": None, "run": None}
    name = quote(str(info.get("model_name", "")), safe="")
    version = quote(str(info.get("version", "")), safe="")
    run_id = info.get("run_id")
    return {
        "version": f"{base}/#/models/{name}/versions/{version}",
        "run": f"{base}/#/runs/{quote(str(run_id), safe='')}" if run_id else None,
    }
