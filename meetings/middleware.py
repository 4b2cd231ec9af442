"""Security headers Django's SecurityMiddleware does not send: Content-Security-Policy and
Permissions-Policy (HSTS, nosniff, Referrer-Policy and COOP are Django's; X-Frame-Options is the
clickjacking middleware's). Django 5.2 has no CSP support of its own; 6.0 does.

And the proxy's headers, believed only from a trusted proxy (TrustedProxyMiddleware)."""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings

# What a proxy says about the client: X-Forwarded-Proto makes request.is_secure() true
# (SECURE_PROXY_SSL_HEADER), X-Forwarded-For names the client the audit records.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST")


def is_trusted_proxy(address):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXY_NETWORKS)


def client_address(meta):
    """The client's address: REMOTE_ADDR, or behind trusted proxies the right-most address in
    X-Forwarded-For that is not one of them. Each proxy appends the peer it saw, so entries left
    of the last one a trusted proxy wrote are only what the client claimed; an entry that is not
    an address ends the walk at the hop that passed it on."""
    address = meta.get("REMOTE_ADDR") or None
    if not address or not is_trusted_proxy(address):
        return address
    for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address
        address = hop
        if not is_trusted_proxy(hop):
            return address
    return address


class TrustedProxyMiddleware:
    """Drops X-Forwarded-* from a request that did not come from a trusted proxy, before
    SecurityMiddleware reads them: gunicorn listening where clients can reach it directly must not
    let one claim HTTPS (and get a session cookie over plain HTTP) or another client's address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_trusted_proxy(request.META.get("REMOTE_ADDR", "")):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        # Django's technical error pages (DEBUG only) are made of inline styles and scripts.
        debug_page = settings.DEBUG and response.status_code in (404, 500)
        if policy and not debug_page:
            policy = with_identity_provider(policy)
            header = (
                "Content-Security-Policy-Report-Only"
                if settings.CSP_REPORT_ONLY
                else "Content-Security-Policy"
            )
            response.headers.setdefault(header, policy)
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


def with_identity_provider(policy):
    """POLICY with the single sign-on provider's origin allowed as a form's destination: the "Sign
    in with …" button posts here and is redirected there, and browsers apply form-action to the
    redirect too."""
    if not settings.OIDC_ENABLED:
        return policy
    parts = urlsplit(settings.OIDC_SERVER_URL)
    origin = f"{parts.scheme}://{parts.netloc}"
    directives = [d.strip() for d in policy.split(";")]
    for i, directive in enumerate(directives):
        if directive.split(" ", 1)[0] == "form-action" and origin not in directive.split():
            directives[i] = f"{directive} {origin}"
    return "; ".join(d for d in directives if d)


class KeyRingMiddleware:
    """Each web process reports which encryption keys it holds (fingerprints, every few
    minutes), so a key rotation knows when every process can read a new key
    (meetings/keyring.py). After the response: one write per process every five minutes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from . import keyring

        response = self.get_response(request)
        keyring.report_now_and_then("web")
        return response
