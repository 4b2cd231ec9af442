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
