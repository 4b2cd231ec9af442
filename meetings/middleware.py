"""Security headers Django's SecurityMiddleware does not send: Content-Security-Policy and
Permissions-Policy (HSTS, nosniff, Referrer-Policy and COOP are Django's; X-Frame-Options is the
clickjacking middleware's). Django 5.2 has no CSP support of its own; 6.0 does."""

from django.conf import settings


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        # Django's technical error pages (DEBUG only) are made of inline styles and scripts.
        debug_page = settings.DEBUG and response.status_code in (404, 500)
        if policy and not debug_page:
            header = (
                "Content-Security-Policy-Report-Only"
                if settings.CSP_REPORT_ONLY
                else "Content-Security-Policy"
            )
            response.headers.setdefault(header, policy)
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


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
