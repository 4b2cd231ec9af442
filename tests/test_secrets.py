"""Secrets at rest: Fernet-encrypted, rotatable, and a wrong key is a clear error, not a crash."""

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection

from meetings.fields import is_undecryptable
from meetings.models import ZoomAccount
from meetings.zoom.errors import ZoomNeedsReconnect
from meetings.zoom.oauth import ZoomCredentialsUnreadable, client_for_account

SECRET = "s2s-client-secret-0123456789"
ACCESS = "access-token-abcdefghijklmnop"
REFRESH = "refresh-token-qrstuvwxyz012345"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The shared users are created with passwords; PBKDF2 would dominate these tests' time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def old_key():
    return Fernet.generate_key().decode()


@pytest.fixture
def new_key():
    return Fernet.generate_key().decode()


@pytest.fixture
def account(db, settings, old_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    return ZoomAccount.objects.create(
        name="Acme",
        kind=ZoomAccount.Kind.OAUTH,
        zoom_account_id="acct-1",
        client_id="client-1",
        client_secret=SECRET,
        access_token=ACCESS,
        refresh_token=REFRESH,
    )


def raw_row(pk):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_secret, access_token, refresh_token FROM meetings_zoomaccount "
            "WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def test_secrets_are_stored_as_ciphertext_and_read_back_in_clear(account):
    row = raw_row(account.pk)
    for stored, clear in zip(row, (SECRET, ACCESS, REFRESH), strict=True):
        assert stored and clear not in stored
        assert stored.startswith("gAAAAA")  # a Fernet token
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert (fresh.client_secret, fresh.access_token, fresh.refresh_token) == (
        SECRET,
        ACCESS,
        REFRESH,
    )


def test_empty_secrets_stay_empty(db, settings, old_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    account = ZoomAccount.objects.create(name="Empty", kind="oauth", client_id="c")
    assert raw_row(account.pk) == ("", "", "")


def test_a_key_list_with_the_new_key_first_reads_old_secrets_and_writes_new_ones(
    account, settings, old_key, new_key
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert fresh.client_secret == SECRET
    fresh.access_token = "another-access-token-000"
    fresh.save(update_fields=["access_token"])
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert ZoomAccount.objects.get(pk=account.pk).access_token == "another-access-token-000"


def test_rotate_encryption_key_moves_every_secret_to_the_newest_key(
    account, settings, old_key, new_key, capsys
):
    # given the new key first, the old one still listed
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    before = raw_row(account.pk)

    # when
    call_command("rotate_encryption_key")

    # then the old key can go
    after = raw_row(account.pk)
    assert all(a != b for a, b in zip(after, before, strict=True))
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert (fresh.client_secret, fresh.access_token, fresh.refresh_token) == (
        SECRET,
        ACCESS,
        REFRESH,
    )
    out = capsys.readouterr().out
    assert "3 secret(s) re-encrypted" in out
    assert SECRET not in out and ACCESS not in out


def test_rotate_encryption_key_leaves_rows_already_under_the_newest_key(
    account, settings, old_key, new_key, capsys
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_key")
    first = raw_row(account.pk)
    call_command("rotate_encryption_key")
    assert raw_row(account.pk) == first
    assert "0 secret(s) re-encrypted, 3 already under the newest key" in capsys.readouterr().out


def test_rotate_dry_run_changes_nothing(account, settings, old_key, new_key, capsys):
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    before = raw_row(account.pk)
    call_command("rotate_encryption_key", "--dry-run")
    assert raw_row(account.pk) == before
    assert "3 secret(s) would be re-encrypted" in capsys.readouterr().out


def test_rotate_reports_secrets_no_key_can_read_and_leaves_them_alone(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key was dropped too early
    before = raw_row(account.pk)
    with pytest.raises(CommandError, match="3 secret\\(s\\) could not be decrypted"):
        call_command("rotate_encryption_key")
    assert raw_row(account.pk) == before


def test_a_wrong_key_reads_as_unreadable_not_as_a_crash(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert is_undecryptable(fresh.access_token)
    assert fresh.access_token == ""  # what a page would show
    assert fresh.secrets_unreadable
    assert fresh.token_state == "unreadable"


def test_a_wrong_key_is_reported_by_the_system_check_naming_the_setting(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    errors = [e for e in run_checks(tags=["zoomadmin"]) if e.id == "zoomadmin.E001"]
    assert len(errors) == 1
    assert "FIELD_ENCRYPTION_KEY" in errors[0].msg
    assert "Acme" in errors[0].msg


def test_the_system_check_is_quiet_when_the_key_fits(account):
    assert not [e for e in run_checks(tags=["zoomadmin"]) if e.id == "zoomadmin.E001"]


def test_saving_an_account_whose_secrets_are_unreadable_keeps_their_ciphertext(
    account, settings, old_key, new_key
):
    # given the wrong key
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    before = raw_row(account.pk)
    fresh = ZoomAccount.objects.get(pk=account.pk)

    # when an admin renames the account
    fresh.name = "Acme (renamed)"
    fresh.save()

    # then the name is saved and the secrets survive for the right key
    assert raw_row(account.pk) == before
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert fresh.name == "Acme (renamed)"
    assert fresh.refresh_token == REFRESH


def test_writing_an_unreadable_secret_back_is_refused(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    with pytest.raises(ValueError, match="no configured key can decrypt"):
        ZoomAccount.objects.filter(pk=account.pk).update(access_token=fresh.access_token)


def test_acting_on_an_account_with_unreadable_secrets_fails_at_once_naming_the_key(
    account, settings, new_key
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    with pytest.raises(ZoomCredentialsUnreadable) as caught:
        client_for_account(fresh)
    assert isinstance(caught.value, ZoomNeedsReconnect)
    assert caught.value.permanent
    assert "FIELD_ENCRYPTION_KEY" in caught.value.describe()


def test_pages_still_work_and_explain_when_the_key_is_wrong(
    client, admin_user, account, settings, new_key
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    client.force_login(admin_user)

    listing = client.get("/connections/")
    detail = client.get(f"/connections/{account.pk}/")
    admin_list = client.get("/admin/meetings/zoomaccount/")
    admin_change = client.get(f"/admin/meetings/zoomaccount/{account.pk}/change/")

    assert listing.status_code == 200
    assert "Unreadable" in listing.text
    assert detail.status_code == 200
    assert "FIELD_ENCRYPTION_KEY" in detail.text
    assert admin_list.status_code == 200
    assert admin_change.status_code == 200
    assert "FIELD_ENCRYPTION_KEY" in admin_change.text


def test_the_admin_never_shows_a_token_or_secret(client, admin_user, account):
    s2s = ZoomAccount.objects.create(
        name="S2S",
        kind=ZoomAccount.Kind.SERVER_TO_SERVER,
        zoom_account_id="acct-2",
        client_id="client-2",
        client_secret="another-client-secret-987",
        access_token="another-access-token-654",
    )
    client.force_login(admin_user)
    pages = [
        client.get("/admin/meetings/zoomaccount/"),
        client.get(f"/admin/meetings/zoomaccount/{account.pk}/change/"),
        client.get(f"/admin/meetings/zoomaccount/{s2s.pk}/change/"),
        client.get("/admin/meetings/zoomaccount/add/"),
        client.get(f"/admin/meetings/zoomaccount/{account.pk}/history/"),
    ]
    for page in pages:
        assert page.status_code == 200
        for secret in (SECRET, ACCESS, REFRESH, "another-client-secret-987", "another-access"):
            assert secret not in page.text
    # the S2S change form has a write-only secret field, empty
    assert 'name="new_client_secret"' in pages[2].text
    assert 'name="access_token"' not in pages[2].text
