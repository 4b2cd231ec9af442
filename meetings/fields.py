"""
Encrypted model fields: secrets (client secrets, OAuth tokens, stream keys) never reach the
database in clear text.

Values are Fernet tokens under the first key of settings.FIELD_ENCRYPTION_KEYS; every listed key
can decrypt, so a key is rotated by putting the new one first, running
`manage.py rotate_encryption_key`, then dropping the old one.
"""

from functools import cache

from cryptography.fernet import InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet_for(keys):
    from cryptography.fernet import Fernet

    return MultiFernet([Fernet(k) for k in keys])


def fernet():
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


class UndecryptableSecret(str):
    """What a stored secret reads as when no configured key can decrypt it.

    It is an empty string to everything that merely displays or tests truthiness, so pages keep
    working; code about to use the secret checks `is_undecryptable(value)` and reports the
    misconfiguration (the health view and a system check name FIELD_ENCRYPTION_KEY).
    """

    undecryptable = True


def is_undecryptable(value):
    return getattr(value, "undecryptable", False)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return UndecryptableSecret("")


class EncryptedTextField(models.TextField):
    """A TextField stored as a Fernet token. Empty strings are stored as empty strings."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value or ""
        if is_undecryptable(value):
            raise ValueError("refusing to overwrite a secret that no configured key can decrypt")
        return encrypt(value)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, kwargs
