"""
Encrypted model fields: secrets (client secrets, OAuth tokens, stream keys) never reach the
database in clear text.

Values are Fernet tokens under the first key of settings.FIELD_ENCRYPTION_KEYS; every listed key
can decrypt, so a key is rotated by putting the new one first, running
`manage.py rotate_encryption_key`, then dropping the old one.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet_for(keys):
    return MultiFernet([Fernet(k) for k in keys])


def fernet():
    """A MultiFernet over every configured key: encrypts with the first, decrypts with any."""
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def primary_fernet():
    """The Fernet of the first (current) key alone: what `rotate_encryption_key` moves to."""
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS[:1]))


class UndecryptableSecret(str):
    """What a stored secret reads as when no configured key can decrypt it.

    It is an empty string to everything that merely displays or tests truthiness, so pages keep
    working; code about to use the secret checks `is_undecryptable(value)` and reports the
    misconfiguration (the health view and a system check name FIELD_ENCRYPTION_KEY). Saving it
    back raises instead of overwriting the ciphertext (ZoomAccount.save leaves such fields out).
    """

    undecryptable = True


def is_undecryptable(value):
    return getattr(value, "undecryptable", False)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeError):
        return UndecryptableSecret("")


def encrypted_fields():
    """[(model, [EncryptedTextField, ...])] for every installed model that has any."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


class EncryptedTextField(models.TextField):
    """A TextField stored as a Fernet token. Empty strings are stored as empty strings.

    Lookups on it cannot match (each encryption is salted): never filter by a secret.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        # Checked first: an UndecryptableSecret is falsy, and writing "" in its place would
        # destroy the ciphertext that the right key could still read.
        if is_undecryptable(value):
            raise ValueError("refusing to overwrite a secret that no configured key can decrypt")
        value = super().get_prep_value(value)
        if not value:
            return ""
        return encrypt(value)
