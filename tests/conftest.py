"""Shared fixtures: users of each role, and (from tests/fixtures/) the sandbox, a real worker and
the session-wide scan for secrets in clear text (tests/fixtures/secret_scan.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.worker",
    "tests.fixtures.secret_scan",
    "tests.fixtures.notify",
    "tests.fixtures.oidc",
]


@pytest.fixture(scope="session", autouse=True)
def _cache_in_memory():
    """The tests' own cache in this process's memory: with REDIS_URL the settings put it in Redis,
    whose clear() would empty the broker's database under a running worker."""
    from django.test import override_settings

    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=caches):
        yield


@pytest.fixture(autouse=True)
def _fresh_sign_in_counts(_cache_in_memory):
    """Failed sign-ins are counted in the cache (allauth's rate limits): each test starts with
    none, whatever the tests before it typed."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """PBKDF2's deliberate slowness (seconds per user on a loaded CI machine) buys tests nothing.
    Live servers and workers started by tests run in this process's settings or their own."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def _no_second_person_unless_asked():
    """The pipeline's tests ask for ends and recoveries as one operator; a second person
    (meetings.approvals) is what tests/test_approvals.py turns on, with the shipped defaults."""
    from django.test import override_settings

    off = {"kinds": [], "bulk_enabled": False, "bulk_threshold": 20}
    with override_settings(APPROVAL_DEFAULTS=off):
        yield


@pytest.fixture(scope="session", autouse=True)
def _static_files_from_the_source():
    """Django runs tests with DEBUG off, where the production storage links pages to the hashed
    names of the last collectstatic (a stale or missing manifest fails the page); tests link to
    static/ as it is, which the live server serves. tests/browser/test_production.py covers the
    collected, hashed files under gunicorn."""
    from django.test import override_settings

    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory):
    """A STATIC_ROOT filled by collectstatic (hashed, compressed names), for processes the tests
    start with DEBUG off: production pages link to what was collected, and fail without it."""
    static_root = tmp_path_factory.mktemp("static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true", "STATIC_ROOT": str(static_root)},
        check=True,
        timeout=120,
    )
    return static_root


@pytest.fixture
def password():
    return "correct horse battery staple"


def _user(django_user_model, username, password, groups=(), **extra):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username=username, password=password, **extra)
    for name in groups:
        group, _ = Group.objects.get_or_create(name=name)
        user.groups.add(group)
    return user


@pytest.fixture
def admin_user(django_user_model, password):
    return _user(django_user_model, "alice-admin", password, is_staff=True, is_superuser=True)


@pytest.fixture
def operator(django_user_model, password):
    return _user(django_user_model, "oscar-operator", password, groups=["Zoom operators"])


@pytest.fixture
def viewer(django_user_model, password):
    return _user(django_user_model, "vera-viewer", password, groups=["Zoom viewers"])


@pytest.fixture
def outsider(django_user_model, password):
    return _user(django_user_model, "otto-outsider", password)
