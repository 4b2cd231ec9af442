"""
Zoom credentials: the OAuth flows, where tokens live, and the refresh that never races.

Two kinds of connection (ZoomAccount.Kind):

- an OAuth app (authorization code, PKCE S256): an admin consents at Zoom, the callback exchanges
  the code; the access token lives an hour and is renewed with the refresh token, which Zoom
  *rotates*: the old refresh token dies the moment a new one is issued (NOTES.md);
- a Server-to-Server app: the `account_credentials` grant with the client id and secret; no
  refresh token, and fetching a new access token has been seen to invalidate the previous one.

Either way the rule is the same: **one token per account, shared through its database row, and
replaced only under that row's lock.** `ensure_access_token` takes the lock (`select_for_update`;
on SQLite the IMMEDIATE transaction takes the database's write lock, which serialises the same
way across processes), re-reads the row, and asks Zoom for a new token only if nobody did so while
it waited. The rotated refresh token is saved in the same transaction as the access token. So 20
workers holding an expired token make exactly one token request, and no worker ever sends a
refresh token that another has already spent (which would answer invalid_grant and lose the
connection).

`client_for_account(account)` gives a ready `ZoomClient`: its session signs API requests with the
account's token, replaces it 60 s before expiry and once on a 401 code 124, and notes the
account's last successful call / last error (at most one write a minute per account and process).

Secrets never leave this module in a message: errors carry Zoom's OAuth error code and words, log
lines name accounts, not tokens, and requests-oauthlib's DEBUG chatter (request bodies, Basic auth
headers, token answers) is dropped below.
"""

import base64
import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils.timezone import now
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from ..models import ZoomAccount
from ..models.accounts import TOKEN_REFRESH_MARGIN
from .errors import (
    ZoomAuthError,
    ZoomBadRequest,
    ZoomBadResponse,
    ZoomConnectionError,
    ZoomError,
    ZoomNeedsReconnect,
    ZoomRateLimited,
    ZoomScopeMissing,
    ZoomServerError,
    ZoomTimeout,
    error_from_response,
)

logger = logging.getLogger(__name__)


class _DropDebugRecords(logging.Filter):
    """requests-oauthlib logs token request bodies (codes, refresh tokens, PKCE verifiers),
    headers and Zoom's token answers at DEBUG. Whatever LOG_LEVEL says, those never get out."""

    def filter(self, record):
        return record.levelno >= logging.WARNING


logging.getLogger("requests_oauthlib.oauth2_session").addFilter(_DropDebugRecords())


# --- Errors -------------------------------------------------------------------------------------

# RFC 6749 §5.2 error codes in plain words.
OAUTH_ERRORS = {
    "invalid_grant": "the authorization code or refresh token is invalid, expired, "
    "revoked or already used",
    "invalid_client": "the client id or client secret is wrong",
    "unauthorized_client": "this app is not allowed to use this kind of grant",
    "invalid_request": "the token request was refused as invalid",
    "unsupported_grant_type": "this kind of grant is not supported for this app",
    "invalid_scope": "the requested scopes are not allowed",
    "access_denied": "access was denied",
}
# Errors after which only an admin can restore the connection (new consent or new secret).
CREDENTIALS_REFUSED = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class OAuthRefused(ZoomBadRequest):
    """Zoom's token or revoke endpoint refused the request; `error` is the OAuth error code."""

    def __init__(self, error, reason="", *, status=None):
        super().__init__(reason, status=status)
        self.error = error or "invalid_request"

    @property
    def credentials_refused(self):
        return self.error in CREDENTIALS_REFUSED

    def describe(self):
        words = OAUTH_ERRORS.get(self.error, "the request was refused")
        # Zoom's own reason ("Redirect URI mismatch.", "Invalid Token!"), already scrubbed.
        reason = f": {self.message.rstrip('.')}" if self.message else ""
        return f"Zoom refused the credentials: {words} ({self.error}{reason})"


class ZoomCredentialsUnreadable(ZoomNeedsReconnect):
    """The stored secrets cannot be decrypted with the configured FIELD_ENCRYPTION_KEY."""

    def __init__(self, **kwargs):
        super().__init__(
            "The stored Zoom credentials cannot be decrypted: FIELD_ENCRYPTION_KEY is not the "
            "key they were saved with (put the old key back, or reconnect the account)",
            **kwargs,
        )


def _scrub(text, sent):
    """Zoom's words about a refused request, with anything we sent replaced (belt and braces:
    Zoom does not echo tokens, but this text reaches pages and the account's last error)."""
    text = str(text or "")[:300]
    for value in sent:
        if value and len(value) >= 6:
            text = text.replace(value, "…")
    return text


# --- The OAuth endpoints ------------------------------------------------------------------------


def _oauth_url(path):
    base = settings.ZOOM_OAUTH_BASE_URL
    if base.startswith("http://"):
        # oauthlib refuses plain http. The settings allow it for the local sandbox only (system
        # check zoomadmin.W002 warns in deployment); this flag lifts oauthlib's check, nothing else.
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    return f"{base}{path}"


def _check_token_answer(sent):
    """A requests-oauthlib compliance hook: turn Zoom's error answers into our errors before
    oauthlib tries to read them as tokens."""

    def hook(response):
        status = response.status_code
        if status == 429 or status >= 500:
            raise error_from_response(
                status, _json_or_none(response), response.headers, operation="oauth token"
            )
        body = _json_or_none(response)
        if status >= 400:
            if not isinstance(body, dict):
                raise ZoomBadResponse(f"the token endpoint answered HTTP {status}", status=status)
            reason = body.get("reason") or body.get("error_description") or ""
            raise OAuthRefused(body.get("error"), _scrub(reason, sent), status=status)
        if not isinstance(body, dict):
            raise ZoomBadResponse("the token endpoint did not answer JSON", status=status)
        return response

    return hook


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def _token_request(session, call, sent):
    """Run a requests-oauthlib token call; return the token as a plain dict."""
    hook = _check_token_answer(sent)
    session.register_compliance_hook("access_token_response", hook)
    session.register_compliance_hook("refresh_token_response", hook)
    try:
        token = call()
    except ZoomError:
        raise
    except OAuth2Error as e:  # a 2xx answer without a usable token
        raise ZoomBadResponse(f"the token answer was not usable ({e.error})") from None
    except requests.Timeout:
        raise ZoomTimeout("the token request timed out") from None
    except requests.RequestException as e:
        raise ZoomConnectionError(f"the token request failed ({type(e).__name__})") from None
    except UnicodeEncodeError:
        # HTTP Basic auth is Latin-1: a client id or secret typed with other characters cannot
        # be sent (a 500 before, found by tests/test_hostile_input.py). Zoom's are ASCII.
        raise OAuthRefused(
            "invalid_client", "the client id or secret has characters Zoom's never have"
        ) from None
    finally:
        session.close()
    return _normalise_token(token)


def _normalise_token(token):
    scope = token.get("scope") or ""
    if isinstance(scope, list | tuple | set):
        scope = " ".join(scope)
    result = {
        "access_token": token["access_token"],
        "expires_in": int(token.get("expires_in") or 3600),
        "scope": scope,
    }
    if token.get("refresh_token"):
        result["refresh_token"] = token["refresh_token"]
    return result


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the admin for consent, and what the callback must check it against."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str


def authorization_request(client_id, redirect_uri):
    """Start the authorization-code flow: the authorize URL with a fresh `state` and a PKCE S256
    challenge. Keep `state` and `code_verifier` in the server-side session, for one use."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]: RFC 7636 §4.1
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    session = OAuth2Session(client_id, redirect_uri=redirect_uri)
    url, _ = session.authorization_url(
        _oauth_url("/oauth/authorize"),
        state=state,
        code_challenge=challenge.decode().rstrip("="),
        code_challenge_method="S256",
    )
    return AuthorizationRequest(url, state, verifier, redirect_uri)


def exchange_code(*, client_id, client_secret, code, redirect_uri, code_verifier):
    """The `authorization_code` grant: the callback's code for tokens (client in Basic auth)."""
    session = OAuth2Session(client_id, redirect_uri=redirect_uri)
    return _token_request(
        session,
        lambda: session.fetch_token(
            _oauth_url("/oauth/token"),
            code=code,
            auth=HTTPBasicAuth(client_id, client_secret),
            include_client_id=False,
            code_verifier=code_verifier,
            timeout=settings.ZOOM_TIMEOUT_SECONDS,
        ),
        sent=(client_secret, code, code_verifier),
    )


def refresh_grant(*, client_id, client_secret, refresh_token):
    """The `refresh_token` grant. Zoom answers with a new refresh token and kills the old one."""
    session = OAuth2Session(client_id)
    return _token_request(
        session,
        lambda: session.refresh_token(
            _oauth_url("/oauth/token"),
            refresh_token=refresh_token,
            auth=HTTPBasicAuth(client_id, client_secret),
            timeout=settings.ZOOM_TIMEOUT_SECONDS,
        ),
        sent=(client_secret, refresh_token),
    )


class _AccountCredentialsClient(BackendApplicationClient):
    """Zoom's Server-to-Server grant: client credentials plus the account id."""

    grant_type = "account_credentials"


def account_credentials_grant(*, zoom_account_id, client_id, client_secret):
    """The `account_credentials` grant (Server-to-Server OAuth): an access token, no refresh."""
    session = OAuth2Session(client=_AccountCredentialsClient(client_id))
    return _token_request(
        session,
        lambda: session.fetch_token(
            _oauth_url("/oauth/token"),
            auth=HTTPBasicAuth(client_id, client_secret),
            include_client_id=False,
            account_id=zoom_account_id,
            timeout=settings.ZOOM_TIMEOUT_SECONDS,
        ),
        sent=(client_secret,),
    )


def revoke_token(*, client_id, client_secret, token):
    """POST /oauth/revoke: Zoom forgets the token (for an OAuth app, the whole authorization)."""
    try:
        response = requests.post(
            _oauth_url("/oauth/revoke"),
            data={"token": token},
            auth=HTTPBasicAuth(client_id, client_secret),
            headers={"Accept": "application/json"},
            timeout=settings.ZOOM_TIMEOUT_SECONDS,
        )
    except requests.Timeout:
        raise ZoomTimeout("the revoke request timed out") from None
    except requests.RequestException as e:
        raise ZoomConnectionError(f"the revoke request failed ({type(e).__name__})") from None
    with response:
        if response.status_code < 400:
            return
        _check_token_answer((client_secret, token))(response)


# --- Which OAuth app the dashboard uses ----------------------------------------------------------


def _is_loopback(url):
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def sandbox_defaults_allowed():
    """True when empty Zoom credentials may fall back to the sandbox's default apps.

    That is: settings.ZOOM_SANDBOX if set, else DEBUG is on and ZOOM_OAUTH_BASE_URL is on this
    machine (the sandbox `make demo` runs). Never for a real Zoom URL.
    """
    explicit = getattr(settings, "ZOOM_SANDBOX", None)
    if explicit is not None:
        return bool(explicit)
    return settings.DEBUG and _is_loopback(settings.ZOOM_OAUTH_BASE_URL)


def oauth_app_credentials():
    """(client id, client secret) of the OAuth app the Connect page sends admins to.

    ZOOM_CLIENT_ID / ZOOM_CLIENT_SECRET; with both empty and `sandbox_defaults_allowed()`, the
    sandbox's default OAuth app. ("", "") when nothing is configured.
    """
    client_id, client_secret = settings.ZOOM_CLIENT_ID, settings.ZOOM_CLIENT_SECRET
    if not client_id and not client_secret and sandbox_defaults_allowed():
        from .sandbox import DEFAULT_OAUTH_CLIENT_ID, DEFAULT_OAUTH_CLIENT_SECRET

        return DEFAULT_OAUTH_CLIENT_ID, DEFAULT_OAUTH_CLIENT_SECRET
    return client_id, client_secret


def server_to_server_defaults():
    """(account id, client id, client secret) for `zoom_connect --server-to-server`.

    ZOOM_ACCOUNT_ID / ZOOM_CLIENT_ID / ZOOM_CLIENT_SECRET; with all empty and
    `sandbox_defaults_allowed()`, the sandbox's default Server-to-Server app.
    """
    values = (settings.ZOOM_ACCOUNT_ID, settings.ZOOM_CLIENT_ID, settings.ZOOM_CLIENT_SECRET)
    if not any(values) and sandbox_defaults_allowed():
        from . import sandbox

        return (
            getattr(sandbox, "DEFAULT_ACCOUNT_ID", "sandbox-account"),
            sandbox.DEFAULT_S2S_CLIENT_ID,
            sandbox.DEFAULT_S2S_CLIENT_SECRET,
        )
    return values


# --- The account's token, shared by every worker ------------------------------------------------


def _fresh(access_token, expires_at):
    return (
        bool(access_token)
        and expires_at is not None
        and expires_at > now() + (TOKEN_REFRESH_MARGIN)
    )


def _check_usable(account):
    if account.status == ZoomAccount.Status.DISCONNECTED:
        raise ZoomNeedsReconnect(
            "Zoom connection needs to be reconnected: it was disconnected by an admin"
        )
    if account.status != ZoomAccount.Status.CONNECTED:
        raise ZoomNeedsReconnect()
    if account.secrets_unreadable:
        raise ZoomCredentialsUnreadable()


def _new_token(account):
    """Ask Zoom for a new access token with the account's stored credentials."""
    if account.is_server_to_server:
        if not account.client_secret:
            raise OAuthRefused("invalid_client", "no client secret is stored")
        return account_credentials_grant(
            zoom_account_id=account.zoom_account_id,
            client_id=account.client_id,
            client_secret=account.client_secret,
        )
    if not account.refresh_token:
        raise OAuthRefused("invalid_grant", "no refresh token is stored")
    return refresh_grant(
        client_id=account.client_id,
        client_secret=account.client_secret,
        refresh_token=account.refresh_token,
    )


def ensure_access_token(account_pk, *, stale_token=None):
    """A usable access token for the account, as (token, expires_at).

    Reads the row; if its token is good for more than TOKEN_REFRESH_MARGIN and is not
    `stale_token` (the one Zoom just refused), that is the answer. Otherwise, under the row lock:
    read again, use what another worker stored while we waited, or ask Zoom for a new token and
    save it (rotated refresh token included) before the lock is released.

    Raises ZoomNeedsReconnect at once for an account that is not connected, and after marking it
    `needs_reconnect` when Zoom refuses its refresh token or client credentials (invalid_grant,
    invalid_client). Other failures (Zoom down, timeouts, 429) are noted on the account as its
    last error and raised as they are: they may pass.

    Call Zoom outside any transaction of your own: inside one, the new token is committed (and
    the lock released) only with it, and a rollback would lose a refresh token Zoom has already
    rotated, which costs the connection.
    """
    row = (
        ZoomAccount.objects.filter(pk=account_pk)
        .values("access_token", "token_expires_at", "status")
        .first()
    )
    if row is None:
        raise ZoomNeedsReconnect("Zoom connection needs to be reconnected: it no longer exists")
    if (
        row["status"] == ZoomAccount.Status.CONNECTED
        and _fresh(row["access_token"], row["token_expires_at"])
        and row["access_token"] != stale_token
    ):
        return row["access_token"], row["token_expires_at"]

    failure = None
    with transaction.atomic():
        account = ZoomAccount.objects.select_for_update().filter(pk=account_pk).first()
        if account is None:
            raise ZoomNeedsReconnect("Zoom connection needs to be reconnected: it no longer exists")
        _check_usable(account)
        if (
            _fresh(account.access_token, account.token_expires_at)
            and account.access_token != stale_token
        ):
            return account.access_token, account.token_expires_at  # another worker refreshed
        started = time.monotonic()
        try:
            token = _new_token(account)
        except OAuthRefused as e:
            if e.credentials_refused:
                account.mark_needs_reconnect(e.describe())
                logger.warning(
                    "Zoom account %r (id %s) needs reconnecting: %s",
                    account.name,
                    account.pk,
                    e.describe(),
                )
                failure = ZoomNeedsReconnect(status=e.status)
            else:
                _note_error_now(account, e)
                failure = e
        except ZoomError as e:
            _note_error_now(account, e)
            failure = e
        else:
            account.store_token(token)
            logger.info(
                "New Zoom access token for account %r (id %s), valid until %s (%d ms)",
                account.name,
                account.pk,
                account.token_expires_at.isoformat(timespec="seconds"),
                (time.monotonic() - started) * 1000,
            )
            return account.access_token, account.token_expires_at
    # Outside the atomic block, so the account's new status / last error is committed.
    raise failure


# --- connections to Zoom -----------------------------------------------------------------------

# One pool of keep-alive connections to Zoom per process, shared by every session: a client is
# made per action, and a session of its own would open (in production, TLS-handshake) a new
# connection for each one. That costs a round trip or three per click, and it made the time from
# a rate-limiter slot to Zoom's arrival vary by tens of milliseconds, which bunches requests that
# left evenly spaced (BENCHMARKS.md, section 1).
_POOL_CONNECTIONS = 4  # distinct hosts kept: Zoom's API, and in tests the odd sandbox restart
_POOL_MAXSIZE = 16  # connections per host: a web process's threads, a sync's page fetchers
_shared_adapter = None
_shared_adapter_lock = threading.Lock()


def shared_adapter():
    """This process's HTTPAdapter for Zoom's API."""
    global _shared_adapter
    with _shared_adapter_lock:
        if _shared_adapter is None:
            _shared_adapter = HTTPAdapter(
                pool_connections=_POOL_CONNECTIONS, pool_maxsize=_POOL_MAXSIZE
            )
        return _shared_adapter


def _forget_connections_after_fork():
    # A forked Celery pool process must not write into its parent's sockets (two processes on
    # one connection mix their requests), and must not inherit a lock held by another thread.
    global _shared_adapter, _shared_adapter_lock
    _shared_adapter = None
    _shared_adapter_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_connections_after_fork)


class _PooledSession(requests.Session):
    """A session whose requests to Zoom's API reuse this process's connections."""

    def __init__(self):
        super().__init__()
        self._api_prefix = _origin(settings.ZOOM_API_BASE_URL) + "/"
        self.mount(self._api_prefix, shared_adapter())

    def close(self):
        # Closing the shared pool would cut every other session's connections.
        self.adapters.pop(self._api_prefix, None)
        super().close()

    def warm(self):
        """Make sure this process holds an open connection to Zoom's API, opening one now if
        not. The client calls it before booking a rate-limiter slot: the first request of a
        worker process, or the first after Zoom closed an idle connection, would otherwise do
        its TCP and TLS handshakes between the slot and Zoom, and arrive late by a varying
        round trip or three, bunched with the requests booked after it. Best effort: a failure
        here is left for the request itself to meet and report."""
        adapter = self.adapters.get(self._api_prefix)
        if adapter is None:
            return
        env = self.merge_environment_settings(self._api_prefix, {}, None, None, None)
        if env["proxies"]:
            return  # through a proxy, the pool is the proxy's: leave it to the request
        conn = pool = None
        try:
            request = requests.Request("GET", self._api_prefix).prepare()
            pool = adapter.get_connection_with_tls_context(
                request, env["verify"], None, env["cert"]
            )
            conn = pool._get_conn()  # an idle connection (checked for a hang-up), or a new one
            if conn.sock is None:
                conn.timeout = settings.ZOOM_TIMEOUT_SECONDS
                conn.connect()
        except Exception as e:  # any failure: the request will meet it again, and say so
            logger.debug("could not open a connection to Zoom ahead of a request: %s", e)
            if conn is not None:
                conn.close()
        finally:
            if pool is not None and conn is not None:
                pool._put_conn(conn)


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class AccountSession(_PooledSession):
    """A requests session that signs Zoom API requests with one account's access token.

    The token is cached here and replaced through `ensure_access_token` when it comes within
    TOKEN_REFRESH_MARGIN of expiry, and once when Zoom answers 401 code 124 (revoked, or replaced
    by another worker's Server-to-Server token). Requests to any other address than
    ZOOM_API_BASE_URL go out unsigned, so a redirect can never carry the token elsewhere.
    """

    def __init__(self, account):
        super().__init__()
        self.account_pk = account.pk
        self._lock = threading.Lock()  # a client may be shared by threads (a sync's pages)
        self._token = account.access_token if not account.secrets_unreadable else ""
        self._expires_at = account.token_expires_at

    def _valid_token(self):
        with self._lock:
            if _fresh(self._token, self._expires_at):
                return self._token
        return self._store(*ensure_access_token(self.account_pk))

    def _replace_token(self, refused):
        return self._store(*ensure_access_token(self.account_pk, stale_token=refused))

    def _store(self, token, expires_at):
        with self._lock:
            self._token, self._expires_at = token, expires_at
        return token

    def send(self, request, **kwargs):
        if not request.url.startswith(settings.ZOOM_API_BASE_URL + "/"):
            request.headers.pop("Authorization", None)
            return super().send(request, **kwargs)
        token = self._valid_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = super().send(request, **kwargs)
        if response.status_code == 401 and _zoom_code(response) == 124:
            logger.info(
                "Zoom refused the access token of account id %s; renewing it", self.account_pk
            )
            response.close()
            retry = request.copy()
            retry.headers["Authorization"] = f"Bearer {self._replace_token(token)}"
            response = super().send(retry, **kwargs)
        return response


class _BearerSession(_PooledSession):
    """Signs requests with one given token: for the calls made while connecting, before the
    account (and its row lock) exists."""

    def __init__(self, token):
        super().__init__()
        self._token = token

    def send(self, request, **kwargs):
        if request.url.startswith(settings.ZOOM_API_BASE_URL + "/"):
            request.headers["Authorization"] = f"Bearer {self._token}"
        else:
            request.headers.pop("Authorization", None)
        return super().send(request, **kwargs)


def _zoom_code(response):
    body = _json_or_none(response)
    return body.get("code") if isinstance(body, dict) else None


# --- Connection health: last successful call, last error ----------------------------------------

# At most one write per account, kind and process in this many seconds: a sync makes hundreds of
# calls and each must not cost a database write.
HEALTH_WRITE_INTERVAL = 60.0

# Failures that say something about the connection itself. A 404 or "not the host" is about
# the meeting asked for, and is recorded on that action instead.
CONNECTION_FAILURES = (
    ZoomAuthError,
    ZoomRateLimited,
    ZoomServerError,
    ZoomConnectionError,
    ZoomBadResponse,
)

_health_lock = threading.Lock()
# (account pk, its creation time, "success" | "error") -> (monotonic time, message). The creation
# time tells apart rows that reuse a primary key (a deleted account's, or a test's).
_health_written = {}


def note_call(account, error=None, *, force=False):
    """Note a call's outcome on the account: last_success_at, or last_error / last_error_at.

    Throttled to one write per HEALTH_WRITE_INTERVAL per account and kind in this process (a
    different error message is written at once); `force` writes regardless (the "Test
    connection" button). Failures about the target rather than the connection are ignored.
    """
    if error is not None and not isinstance(error, CONNECTION_FAILURES):
        return
    kind = "success" if error is None else "error"
    message = "" if error is None else error.describe()[:1000]
    key = (account.pk, account.created, kind)
    clock = time.monotonic()
    with _health_lock:
        last = _health_written.get(key)
        if (
            not force
            and last is not None
            and clock - last[0] < HEALTH_WRITE_INTERVAL
            and last[1] == message
        ):
            return
        _health_written[key] = (clock, message)
    fields = {"last_success_at": now()} if error is None else _error_fields(message)
    try:
        # A savepoint: a failed write must not break the caller's transaction (PostgreSQL).
        with transaction.atomic():
            ZoomAccount.objects.filter(pk=account.pk).update(**fields)
    except DatabaseError:
        logger.warning("Could not note the health of Zoom account id %s", account.pk, exc_info=True)


def _error_fields(message):
    return {"last_error": message, "last_error_at": now()}


def _note_error_now(account, error):
    account.last_error = error.describe()[:1000]
    account.last_error_at = now()
    account.save(update_fields=["last_error", "last_error_at"])


def _throttled(key):
    """True when `key` was noted in this process less than HEALTH_WRITE_INTERVAL ago."""
    clock = time.monotonic()
    with _health_lock:
        last = _health_written.get(key)
        if last is not None and clock - last[0] < HEALTH_WRITE_INTERVAL:
            return True
        _health_written[key] = (clock, "")
    return False


def note_scope_refused(account, error):
    """Zoom refused an operation for want of a scope (code 4711): the connection is unhealthy
    until the scope is granted. Noted on the account (which operation, when) so the overview,
    the connection's page and /healthz name the scope to add; the last error says it too."""
    operation = error.operation or "unknown"
    if _throttled((account.pk, account.created, f"refused:{operation}")):
        return
    try:
        with transaction.atomic():
            row = (
                ZoomAccount.objects.select_for_update()
                .filter(pk=account.pk)
                .only("pk", "scope_refusals")
                .first()
            )
            if row is None:
                return
            refusals = dict(row.scope_refusals) if isinstance(row.scope_refusals, dict) else {}
            refusals[operation] = now().isoformat(timespec="seconds")
            ZoomAccount.objects.filter(pk=account.pk).update(
                scope_refusals=refusals, **_error_fields(error.describe()[:1000])
            )
    except DatabaseError:
        logger.warning("Could not note a scope refusal on Zoom account id %s", account.pk)
        return
    logger.warning(
        "Zoom refused %s on account id %s for want of a scope: %s",
        operation,
        account.pk,
        error.describe(),
    )


def note_scope_allowed(account, operation):
    """An operation went through: a refusal noted for it is over (at most one look a minute per
    account and operation in this process)."""
    if _throttled((account.pk, account.created, f"allowed:{operation}")):
        return
    try:
        noted = ZoomAccount.objects.filter(pk=account.pk, scope_refusals__has_key=operation)
        if not noted.exists():  # the usual case, and no row lock for it
            return
        with transaction.atomic():
            row = (
                ZoomAccount.objects.select_for_update()
                .filter(pk=account.pk)
                .only("pk", "scope_refusals")
                .first()
            )
            refusals = row.scope_refusals if row is not None else None
            if not isinstance(refusals, dict) or operation not in refusals:
                return
            refusals = {op: at for op, at in refusals.items() if op != operation}
            ZoomAccount.objects.filter(pk=account.pk).update(scope_refusals=refusals)
    except DatabaseError:
        logger.warning("Could not clear a scope refusal on Zoom account id %s", account.pk)


def _operation_of(method, path_template):
    from .client import OPERATIONS

    for op in OPERATIONS.values():
        if op.method == method and op.path == path_template:
            return op.operation_id
    return None


def _health_recorder(account, on_response):
    def record(method, path_template, status, duration_ms, error):
        if isinstance(error, ZoomScopeMissing):
            note_scope_refused(account, error)
        else:
            note_call(account, error)
            if error is None:
                operation = _operation_of(method, path_template)
                if operation:
                    note_scope_allowed(account, operation)
        if on_response is not None:
            on_response(method, path_template, status, duration_ms, error)

    return record


# --- What the rest of the dashboard calls --------------------------------------------------------


def client_for_account(account, *, throttle=None, on_response=None):
    """A ZoomClient acting as `account`, with the token handling described above.

    Raises ZoomNeedsReconnect at once, without any HTTP, when the account needs reconnecting or
    was disconnected (or its secrets cannot be decrypted: ZoomCredentialsUnreadable).
    """
    from .client import ZoomClient

    _check_usable(account)
    return ZoomClient(
        AccountSession(account),
        settings.ZOOM_API_BASE_URL,
        timeout=settings.ZOOM_TIMEOUT_SECONDS,
        throttle=throttle,
        on_response=_health_recorder(account, on_response),
    )


def client_for_token(access_token, **kwargs):
    """A ZoomClient signing with a token that is not stored (yet): used while connecting."""
    from .client import ZoomClient

    return ZoomClient(
        _BearerSession(access_token),
        settings.ZOOM_API_BASE_URL,
        timeout=settings.ZOOM_TIMEOUT_SECONDS,
        **kwargs,
    )


def check_connection(account):
    """GET /users/me as the account (the "Test connection" button): returns the ZoomUser.

    Records the outcome on the account whatever the throttle says, and raises ZoomError.
    """
    client = client_for_account(account)
    try:
        me = client.get_me()
    except ZoomNeedsReconnect:
        raise
    except ZoomError as e:
        note_call(account, e, force=True)
        if not isinstance(e, CONNECTION_FAILURES):
            ZoomAccount.objects.filter(pk=account.pk).update(**_error_fields(e.describe()))
        raise
    note_call(account, None, force=True)
    return me


def _unique_name(wanted, *, exclude_pk=None):
    wanted = (wanted or "Zoom account").strip()[:190]
    taken = ZoomAccount.objects.exclude(pk=exclude_pk)
    name, n = wanted, 1
    while taken.filter(name=name).exists():
        n += 1
        name = f"{wanted} ({n})"
    return name


def _display_name(me):
    full = f"{me.first_name or ''} {me.last_name or ''}".strip()
    return f"{full} ({me.email})" if full and me.email else (me.email or full or me.account_id)


class WrongZoomAccount(ZoomBadRequest):
    """Reconnecting signed in to a different Zoom account than the one being reconnected."""

    def describe(self):
        return (
            "Zoom granted access to a different Zoom account than the one being reconnected; "
            "nothing was changed. Sign in to Zoom as a user of the right account and try again."
        )


def complete_oauth_connection(
    *,
    token,
    client_id,
    client_secret,
    user,
    name="",
    plan="",
    account=None,
    webhook_secret_token="",
):
    """Store a freshly exchanged OAuth token as a connected account; return (account, created).

    Reads /users/me with the token to learn the Zoom account and user. With `account`
    (reconnecting) the Zoom account must be the same one; otherwise an existing OAuth connection
    to the same Zoom account is updated rather than duplicated. On any failure the new token is
    revoked at Zoom and nothing is stored.
    """
    try:
        me = client_for_token(token["access_token"]).get_me()
    except ZoomError:
        _revoke_quietly(client_id, client_secret, token["access_token"])
        raise
    if account is None:
        account = ZoomAccount.objects.filter(
            kind=ZoomAccount.Kind.OAUTH, zoom_account_id=me.account_id
        ).first()
    elif account.zoom_account_id and account.zoom_account_id != me.account_id:
        _revoke_quietly(client_id, client_secret, token["access_token"])
        raise WrongZoomAccount()
    created = account is None
    with transaction.atomic():
        if created:
            account = ZoomAccount(kind=ZoomAccount.Kind.OAUTH, created=now())
            account.name = _unique_name(name or _display_name(me))
        else:
            account = ZoomAccount.objects.select_for_update().get(pk=account.pk)
            if name and name != account.name:
                account.name = _unique_name(name, exclude_pk=account.pk)
        if plan:
            account.plan = plan
        account.kind = ZoomAccount.Kind.OAUTH
        account.zoom_account_id = me.account_id or account.zoom_account_id
        account.client_id = client_id
        account.client_secret = client_secret
        if webhook_secret_token:
            account.set_webhook_secret_token(webhook_secret_token)
        account.connected_as = me.email or ""
        account.connected_by = user if getattr(user, "pk", None) else None
        account.last_success_at = now()
        account.store_token(token)  # (no save yet for a new row)
        account.save()
    logger.info(
        "%s Zoom account %r (id %s) by OAuth as %s",
        "Connected" if created else "Reconnected",
        account.name,
        account.pk,
        account.connected_as,
    )
    return account, created


def connect_server_to_server(
    *,
    zoom_account_id,
    client_id,
    client_secret,
    name="",
    plan="",
    user=None,
    account=None,
    webhook_secret_token="",
):
    """Create or update a Server-to-Server connection; return (account, created).

    Fetches a token with the given credentials first: if Zoom refuses them (OAuthRefused,
    invalid_client) nothing is stored. The account to update is `account`, else the one named
    `name`, else the Server-to-Server connection to the same Zoom account and client id. For an
    existing account the token is fetched under its row lock, like every refresh.
    """
    if account is None and name:
        account = ZoomAccount.objects.filter(name=name).first()
    if account is None:
        account = ZoomAccount.objects.filter(
            kind=ZoomAccount.Kind.SERVER_TO_SERVER,
            zoom_account_id=zoom_account_id,
            client_id=client_id,
        ).first()
    created = account is None
    with transaction.atomic():
        if not created:
            account = ZoomAccount.objects.select_for_update().get(pk=account.pk)
        token = account_credentials_grant(
            zoom_account_id=zoom_account_id, client_id=client_id, client_secret=client_secret
        )
        try:
            me = client_for_token(token["access_token"]).get_me()
        except ZoomError as e:
            # Not fatal: an S2S app may lack user:read. The health page shows the scopes.
            logger.info("Server-to-Server account %s: /users/me failed: %s", zoom_account_id, e)
            me = None
        if created:
            account = ZoomAccount(kind=ZoomAccount.Kind.SERVER_TO_SERVER, created=now())
            account.name = _unique_name(name or f"Zoom account {zoom_account_id}")
        elif name and name != account.name:
            account.name = _unique_name(name, exclude_pk=account.pk)
        if plan:
            account.plan = plan
        account.kind = ZoomAccount.Kind.SERVER_TO_SERVER
        account.zoom_account_id = zoom_account_id
        account.client_id = client_id
        account.client_secret = client_secret
        if webhook_secret_token:
            # The app's own webhook secret token; without one the stored token (or the server's
            # default) stays.
            account.set_webhook_secret_token(webhook_secret_token)
        account.refresh_token = ""
        if me is not None:
            account.connected_as = me.email or ""
            account.last_success_at = now()
        if getattr(user, "pk", None):
            account.connected_by = user
        account.store_token(token)
        account.save()
    logger.info(
        "%s Server-to-Server Zoom account %r (id %s)",
        "Connected" if created else "Updated",
        account.name,
        account.pk,
    )
    return account, created


def _revoke_quietly(client_id, client_secret, token):
    try:
        revoke_token(client_id=client_id, client_secret=client_secret, token=token)
    except ZoomError as e:
        logger.warning("Could not revoke an unused Zoom token: %s", e.describe())


def disconnect(account):
    """Revoke the account's token at Zoom, then wipe its credentials (the row stays).

    Returns (the account as saved, warning): warning is None, or a sentence saying why Zoom
    could not be told (the local credentials are wiped regardless: a token Zoom still honours
    expires within the hour).
    """
    warning = None
    with transaction.atomic():
        account = ZoomAccount.objects.select_for_update().get(pk=account.pk)
        token = account.access_token or account.refresh_token
        if account.secrets_unreadable:
            warning = "The stored credentials could not be decrypted, so Zoom was not told."
        elif token and account.client_secret:
            try:
                revoke_token(
                    client_id=account.client_id, client_secret=account.client_secret, token=token
                )
            except ZoomError as e:
                warning = f"Zoom could not be told to revoke the token: {e.describe()}"
        account.mark_disconnected()
    logger.info("Disconnected Zoom account %r (id %s)", account.name, account.pk)
    return account, warning
