"""Settings read the environment and refuse bad or default values with a message naming them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env):
    """Import the settings in a fresh interpreter with ENV; return (exit code, stderr)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-c", "import zoomadmin.settings"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stderr


def test_defaults_load_with_no_configuration():
    code, err = load_settings()
    assert code == 0, err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("SYNC_INTERVAL_SECONDS", "often"),
        ("ZOOM_API_BASE_URL", "ftp://zoom"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("FIELD_ENCRYPTION_KEY", "not-a-fernet-key"),
        ("ZOOM_TIMEOUT_SECONDS", "-1"),
        ("MFA_REQUIRED_ROLES", "admin,boss"),
        ("SESSION_IDLE_MINUTES", "0"),
        ("OIDC_ONLY", "true"),  # without single sign-on set up
        ("OIDC_CLIENT_ID", "zoomadmin"),  # without the issuer and the secret
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(name, value):
    code, err = load_settings(**{name: value})
    assert code != 0
    assert "ImproperlyConfigured" in err
    assert name in err


def test_production_refuses_default_secrets():
    code, err = load_settings(
        DEBUG="false",
        ALLOWED_HOSTS="ops.example.com",
        ZOOM_WEBHOOK_SECRET_TOKEN="sandbox-webhook-secret",
    )
    assert code != 0
    assert "SECRET_KEY" in err
    assert "FIELD_ENCRYPTION_KEY" in err
    assert "ZOOM_WEBHOOK_SECRET_TOKEN" in err


def test_production_starts_with_real_secrets(tmp_path):
    from cryptography.fernet import Fernet

    secret_file = tmp_path / "secret"
    secret_file.write_text("s" * 64)
    code, err = load_settings(
        DEBUG="false",
        ALLOWED_HOSTS="ops.example.com",
        SECRET_KEY_FILE=str(secret_file),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ZOOM_WEBHOOK_SECRET_TOKEN="from-the-zoom-app",
    )
    assert code == 0, err


def settings_values(*names, **env):
    """Import the settings with ENV and DEBUG unset: (0, {name: value}) or (code, stderr)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "ZOOM_")) and k != "DEBUG"
    }
    environment.update(env)
    script = (
        "import json, zoomadmin.settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode:
        return result.returncode, result.stderr
    import json

    return 0, json.loads(result.stdout.strip().splitlines()[-1])


def test_with_debug_unset_the_public_development_secrets_are_refused():
    code, err = settings_values("DEBUG", ALLOWED_HOSTS="ops.example.com")

    assert code != 0
    assert "SECRET_KEY" in err
    assert "FIELD_ENCRYPTION_KEY" in err
    assert "set DEBUG=true" in err


def test_with_debug_unset_production_is_secure_and_knows_no_webhook_secret(tmp_path):
    from cryptography.fernet import Fernet

    code, values = settings_values(
        "DEBUG",
        "ZOOM_WEBHOOK_SECRET_TOKEN",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "FIELD_ENCRYPTION_KEYS",
        ALLOWED_HOSTS="ops.example.com",
        SECRET_KEY="s" * 64,
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ZOOMADMIN_VAR_DIR=str(tmp_path),
    )

    assert code == 0, values
    assert values["DEBUG"] is False
    # No webhook is accepted until the Zoom app's own secret is set: never the sandbox's.
    assert values["ZOOM_WEBHOOK_SECRET_TOKEN"] == ""
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert "ZGV2LW9ubHktaW5zZWN1cmUtZmVybmV0LWtleS0wMDA=" not in values["FIELD_ENCRYPTION_KEYS"]


def test_the_tests_run_with_debug_on_because_they_say_so():
    # tests/development_env.py, loaded by pyproject's addopts; `make test` sets it too.
    from django.conf import settings

    assert os.environ["DEBUG"] == "true"
    assert settings.FIELD_ENCRYPTION_KEYS


@pytest.mark.parametrize("value", ["10.0.0.0/8,192.168.1.", "proxy.example.com"])
def test_trusted_proxies_must_be_addresses_or_networks(value):
    code, err = load_settings(TRUSTED_PROXIES=value)

    assert code != 0
    assert "TRUSTED_PROXIES" in err


WEBHOOK_PROBE = """
import json, time, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)  # webhooks look for each connection's own secret
from django.test import Client
from meetings.webhooks import sign
body = json.dumps({"event": "meeting.ended", "event_ts": 1, "payload": {}}).encode()
stamp = str(int(time.time()))
response = Client(HTTP_HOST="ops.example.com").post(
    "/webhooks/zoom/", body, content_type="application/json", secure=True,
    headers={"x-zm-request-timestamp": stamp,
             "x-zm-signature": sign("sandbox-webhook-secret", stamp, body)},
)
print(response.status_code)
"""


def test_with_debug_unset_a_webhook_signed_with_the_sandboxs_public_secret_is_refused(tmp_path):
    from cryptography.fernet import Fernet

    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "ZOOM_")) and k != "DEBUG"
    }
    environment.update(
        ALLOWED_HOSTS="ops.example.com",
        SECRET_KEY="s" * 64,
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ZOOMADMIN_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="zoomadmin.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", WEBHOOK_PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "401"
