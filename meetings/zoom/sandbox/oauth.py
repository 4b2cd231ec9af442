"""
Zoom's OAuth endpoints, as the sandbox plays them: /oauth/authorize (a consent page), /oauth/token
(authorization_code with optional PKCE, rotating refresh_token, account_credentials) and
/oauth/revoke. Client credentials come in HTTP Basic auth and bodies are form-encoded, as Zoom
requires; errors are Zoom's `{"reason", "error"}` bodies.
"""

import base64
import hashlib
import html
import json
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Response


class OAuthError(Exception):
    def __init__(self, error, reason, status=400):
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.status = status


def pkce_challenge(verifier):
    """S256: base64url(sha256(verifier)) without padding (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _json(data, status=200):
    return Response(
        json.dumps(data),
        status=status,
        content_type="application/json;charset=UTF-8",
        headers={"Cache-Control": "no-store"},
    )


def _error(exc):
    return _json({"reason": exc.reason, "error": exc.error}, status=exc.status)


def _client_app(state, request):
    """The app named by HTTP Basic auth, with its secret checked."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise OAuthError("invalid_client", "Invalid client_id or client_secret", status=401)
    app = state.apps.get(auth.username)
    if app is None or app.client_secret != (auth.password or ""):
        raise OAuthError("invalid_client", "Invalid client_id or client_secret", status=401)
    return app


def token(state, request):
    """POST /oauth/token."""
    if request.method != "POST":
        return _json({"reason": "Method not allowed", "error": "invalid_request"}, status=405)
    try:
        app = _client_app(state, request)
        # Zoom reads the grant from the query string (S2S puts it there) or the form body.
        params = dict(request.args)
        if request.mimetype == "application/x-www-form-urlencoded":
            params.update(request.form.to_dict())
        grant_type = params.get("grant_type", "")
        state.counters["token_requests"] += 1
        state.counters[f"token_requests:{grant_type or 'none'}"] += 1
        if grant_type == "authorization_code":
            if app.kind != "oauth":
                raise OAuthError("unsupported_grant_type", "Unsupported grant type")
            answer = state.exchange_code(
                app,
                params.get("code", ""),
                params.get("redirect_uri", ""),
                params.get("code_verifier"),
            )
        elif grant_type == "refresh_token":
            if app.kind != "oauth":
                raise OAuthError("unsupported_grant_type", "Unsupported grant type")
            answer = state.refresh(app, params.get("refresh_token", ""))
        elif grant_type == "account_credentials":
            answer = state.account_credentials(app, params.get("account_id", ""))
        else:
            raise OAuthError("unsupported_grant_type", "Unsupported grant type")
    except OAuthError as exc:
        return _error(exc)
    return _json(answer)


def revoke(state, request):
    """POST /oauth/revoke (token=..., Basic auth)."""
    if request.method != "POST":
        return _json({"reason": "Method not allowed", "error": "invalid_request"}, status=405)
    try:
        app = _client_app(state, request)
    except OAuthError as exc:
        return _error(exc)
    token_value = request.form.get("token") or request.args.get("token") or ""
    state.counters["revoke_requests"] += 1
    if not state.revoke_token(app, token_value):
        return _json({"reason": "Invalid Token!", "error": "invalid_request"}, status=400)
    return _json({"status": "success"})


def _redirect(url, params):
    separator = "&" if urlsplit(url).query else "?"
    return Response(status=302, headers={"Location": url + separator + urlencode(params)})


def _valid_redirect(app, redirect_uri):
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return app.redirect_uris is None or redirect_uri in app.redirect_uris


def _page(title, body, status=200):
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
        "padding:0 1rem}button{font:inherit;padding:.5rem 1.2rem;margin-right:.5rem}"
        "select{font:inherit;padding:.3rem}li{margin:.2rem 0}</style></head><body>"
        f"{body}</body></html>"
    )
    return Response(page, status=status, content_type="text/html; charset=utf-8")


def authorize(state, request):
    """GET /oauth/authorize shows the consent page; its form POSTs back here with the choice."""
    source = request.form if request.method == "POST" else request.args
    client_id = source.get("client_id", "")
    redirect_uri = source.get("redirect_uri", "")
    app = state.apps.get(client_id)
    if app is None or app.kind != "oauth":
        return _page("Invalid client", "<h1>Invalid client_id</h1>", status=400)
    if not _valid_redirect(app, redirect_uri):
        return _page(
            "Invalid redirect",
            "<h1>Invalid redirect: the redirect URI is not on this app's allow list</h1>",
            status=400,
        )
    oauth_state = source.get("state", "")
    challenge = source.get("code_challenge") or None
    method = source.get("code_challenge_method") or ("S256" if challenge else "")
    if challenge and method != "S256":
        return _redirect(
            redirect_uri,
            {"error": "invalid_request", "error_description": "only S256", "state": oauth_state},
        )
    if request.method == "GET":
        if source.get("response_type", "code") != "code":
            return _redirect(
                redirect_uri, {"error": "unsupported_response_type", "state": oauth_state}
            )
        return _consent_page(state, app, source)

    decision = request.form.get("decision", "")
    if decision != "approve":
        return _redirect(redirect_uri, {"error": "access_denied", "state": oauth_state})
    user = state.find_user(request.form.get("user_id", ""), account_id=app.account_id)
    if user is None:
        return _page("Unknown user", "<h1>Choose a user of this account</h1>", status=400)
    code = state.create_authorization_code(app.client_id, user["id"], redirect_uri, challenge)
    state.counters["authorizations"] += 1
    return _redirect(redirect_uri, {"code": code, "state": oauth_state})


def _consent_page(state, app, source):
    esc = html.escape
    with state.lock:
        users = [
            u
            for u in state.users.values()
            if u["account_id"] == app.account_id and u["status"] == "active"
        ]
    users.sort(key=lambda u: (u["role_name"] != "Owner", u["email"]))
    options = "".join(
        f"<option value='{esc(u['id'])}'>{esc(u['first_name'])} {esc(u['last_name'])} "
        f"&lt;{esc(u['email'])}&gt; ({esc(u['role_name'])})</option>"
        for u in users
    )
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{esc(source.get(name, ''))}'>"
        for name in (
            "client_id",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
            "response_type",
        )
    )
    scopes = "".join(f"<li><code>{esc(s)}</code></li>" for s in app.scopes)
    body = (
        "<h1>Zoom sandbox: authorize app</h1>"
        f"<p><strong>{esc(app.name)}</strong> would like to access your Zoom account "
        f"<code>{esc(app.account_id)}</code> with these permissions:</p><ul>{scopes}</ul>"
        "<form method='post' action='/oauth/authorize'>"
        f"{hidden}<p><label>Signed in as <select name='user_id'>{options}</select></label></p>"
        "<button type='submit' name='decision' value='approve'>Approve</button>"
        "<button type='submit' name='decision' value='deny'>Deny</button></form>"
    )
    return _page("Authorize app — Zoom sandbox", body)
