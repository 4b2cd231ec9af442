"""Security headers on every page, pages a strict CSP can serve, and a clean `check --deploy`."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from tests.test_settings import ROOT

CSP = settings.CONTENT_SECURITY_POLICY


def production_env(tmp_path, **extra):
    """The environment of a production deployment: DEBUG off, real secrets, TLS."""
    from cryptography.fernet import Fernet

    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "DJANGO_", "PYTEST_"))
        and k not in ("DEBUG", "USE_TLS", "LOG_FORMAT", "PROMETHEUS_MULTIPROC_DIR")
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="zoomadmin.settings",
        DEBUG="false",
        ALLOWED_HOSTS="ops.example.com",
        SECRET_KEY="k" * 30 + "-production-secret-key-not-a-default-0123456789",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ZOOM_WEBHOOK_SECRET_TOKEN="from-the-zoom-app",
        ZOOMADMIN_VAR_DIR=str(tmp_path),
    )
    environment.update(extra)
    return environment


def run_python(script, env, timeout=90):
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_security_headers(response):
    assert response["Content-Security-Policy"] == CSP
    assert "frame-ancestors 'none'" in CSP
    assert "script-src 'self';" in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_the_sign_in_page_carries_the_security_headers(client, db):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert_security_headers(response)


def test_a_signed_in_page_an_error_and_a_json_answer_carry_them_too(client, admin_user):
    client.force_login(admin_user)

    for response in (
        client.get(reverse("overview")),
        client.get("/no-such-page/"),
        client.get(reverse("healthz")),
    ):
        assert_security_headers(response)


@override_settings(CSP_REPORT_ONLY=True)
def test_a_policy_can_be_trialled_in_report_only_mode(client, db):
    response = client.get(reverse("login"))

    assert response["Content-Security-Policy-Report-Only"] == CSP
    assert "Content-Security-Policy" not in response


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+=", re.IGNORECASE)
HTMX_EVAL = re.compile(r"\shx-on[:-]|\shx-vals=['\"]js:|\shx-vars=", re.IGNORECASE)


def assert_csp_clean(url, html):
    """What a strict CSP would block: inline <script>, <style>, style=, on*= and htmx's eval."""
    for pattern, what in (
        (INLINE_SCRIPT, "an inline <script>"),
        (INLINE_STYLE, "an inline style"),
        (EVENT_HANDLER, "an inline event handler"),
        (HTMX_EVAL, "an htmx attribute that needs eval"),
    ):
        match = pattern.search(html)
        assert match is None, (
            f"{url} has {what}: {html[max(0, match.start() - 80) : match.end() + 80]}"
        )


def _parameterless_page_urls():
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name and not p.pattern.converters:
                yield prefix + str(p.pattern), p.name

    for route, _name in walk(get_resolver().url_patterns):
        if route.startswith("admin/") or "(?P" in route or "<" in route:
            continue
        yield "/" + route


def test_the_pages_need_nothing_a_strict_csp_blocks(client, admin_user):
    client.force_login(admin_user)
    checked = 0
    for url in sorted(set(_parameterless_page_urls())):
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        assert_csp_clean(url, response.content.decode())
        checked += 1
    client.logout()
    assert_csp_clean("/accounts/login/", client.get(reverse("login")).content.decode())
    assert checked >= 1


def test_the_admin_needs_nothing_a_strict_csp_blocks(client, admin_user):
    client.force_login(admin_user)
    for url in ("/admin/", "/admin/auth/user/", f"/admin/auth/user/{admin_user.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_csp_clean(url, response.content.decode())


def test_check_deploy_with_production_settings_finds_no_issues(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="ops.example.com")
login = client.get("/accounts/login/", secure=True)
plain = client.get("/accounts/login/")
health = client.get("/healthz?check=broker")
print(json.dumps({
    "status": login.status_code,
    "headers": dict(login.headers),
    "cookies": {k: {"secure": bool(v["secure"]), "httponly": bool(v["httponly"]),
                    "samesite": v["samesite"]} for k, v in login.cookies.items()},
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
    "health_status": health.status_code,
}))
"""


def test_production_over_tls_sends_hsts_secure_cookies_and_redirects_plain_http(
    tmp_path, collected_static
):
    result = run_python(PROBE, production_env(tmp_path, STATIC_ROOT=str(collected_static)))

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200
    headers = seen["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert seen["cookies"]["csrftoken"]["secure"] is True
    assert seen["cookies"]["csrftoken"]["samesite"] == "Lax"
    assert seen["plain_status"] == 301
    assert seen["plain_location"].startswith("https://ops.example.com/")
    # A load balancer probing /healthz over plain HTTP gets an answer, not a redirect.
    assert seen["health_status"] in (200, 503)


@pytest.mark.parametrize("value", ["maybe", ""])
def test_csp_report_only_takes_a_boolean(value):
    from tests.test_settings import load_settings

    code, err = load_settings(CSP_REPORT_ONLY=value)
    if value:
        assert code != 0
        assert "CSP_REPORT_ONLY" in err
    else:
        assert code == 0, err
