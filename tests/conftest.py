"""Shared fixtures: users of each role, and (from tests/fixtures/) the sandbox, a real worker and
the session-wide scan for secrets in clear text (tests/fixtures/secret_scan.py)."""

import pytest

pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.worker", "tests.fixtures.secret_scan"]


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """PBKDF2's deliberate slowness (seconds per user on a loaded CI machine) buys tests nothing.
    Live servers and workers started by tests run in this process's settings or their own."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


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
