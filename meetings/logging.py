"""
Structured logs: every line a job writes carries its action id, and no line carries a secret.

- `action_context(action_id)` is a context manager; every log record made inside it (in this
  thread or task) gets `record.action_id`. The action task wraps its work in it:

      with action_context(action.pk):
          ...  # every log line here says action_id=<pk>

  A Celery `task_prerun` hook (meetings/tasks/ops.py) does the same for any task whose first
  parameter is named `action_id`, so a task that forgets the wrapper still gets it.
- `scrub(text)` removes anything that looks like a credential: bearer/basic authorization values,
  JWTs, and the values of `access_token`, `refresh_token`, `client_secret`, `stream_key`,
  `password`, `secret_token`, `token`... whether written `name=value`, `name: value`,
  `"name": "value"` or `'name': 'value'`. `scrub_value(obj)` does the same through JSON-like data.
- `install()` (called by the app's `ready()`) wraps the log record factory so that every record,
  whichever handler ends up writing it (console, Celery's, gunicorn's, pytest's caplog), has its
  message, args, exception text and stack already scrubbed and its `action_id` set.
- `JsonFormatter` writes one JSON object per line (the production default, LOG_FORMAT=json);
  `TextFormatter` writes `time level logger [action=N] message` for a developer's terminal.

This module imports nothing from Django, because LOGGING loads it before the apps are ready.
"""

import contextlib
import contextvars
import datetime
import json
import logging
import re

_action_id = contextvars.ContextVar("zoomadmin_action_id", default=None)

REDACTED = "[redacted]"

# Names whose values are secrets wherever they appear as key=value, key: value or "key": "value".
SECRET_NAMES = (
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "stream_key",
    "secret_token",
    "webhook_secret",
    "code_verifier",
    "password",
    "passwd",
    "api_key",
    "secret",
    "token",
)
_NAME = "|".join(sorted(SECRET_NAMES, key=len, reverse=True))
# The name must not be the tail of a longer word ("plainToken", "encryptedToken" are not secrets;
# the webhook validation answer carries them) and is matched case-insensitively.
_KEY_VALUE = re.compile(
    rf"""(?P<key>(?<![A-Za-z0-9])(?:{_NAME})\\?["']?\s*[:=]\s*)"""
    r"""(?:(?P<quote>\\?["'])(?P<quoted>.*?)(?P=quote)|(?P<bare>[^\s"'&,;}\])\\]+))""",
    re.IGNORECASE,
)
# At least 8 characters, so prose such as "basic auth" or "bearer token" is left alone.
_AUTHORIZATION = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
_SECRET_KEY_NAME = re.compile(rf"(?:^|[^A-Za-z0-9])(?:{_NAME})$", re.IGNORECASE)
# Zoom's access tokens are JWTs; one pasted into a message without its name is still caught.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def _replace_key_value(match):
    if match.group("quote"):
        q = match.group("quote")
        return f"{match.group('key')}{q}{REDACTED}{q}"
    return f"{match.group('key')}{REDACTED}"


def scrub_value(value):
    """A copy of a JSON-like value with secret-named keys and credential-looking text redacted."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and _SECRET_KEY_NAME.search(k) and v not in (None, "")
            else scrub_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


def scrub(text):
    """`text` with every credential-looking value replaced by [redacted]."""
    if not text:
        return text
    text = _AUTHORIZATION.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _KEY_VALUE.sub(_replace_key_value, text)


@contextlib.contextmanager
def action_context(action_id):
    """Tag every log record made inside the block with `action_id` (nests; restores on exit)."""
    token = _action_id.set(action_id)
    try:
        yield
    finally:
        _action_id.reset(token)


def current_action_id():
    return _action_id.get()


def bind_action(action_id):
    """Set the action id until `unbind_action(token)`; for hooks that cannot use a `with` block
    (Celery's task_prerun / task_postrun)."""
    return _action_id.set(action_id)


def unbind_action(token):
    _action_id.reset(token)


def _exception_formatter():
    return logging.Formatter()


def prepare_record(record):
    """Set `record.action_id` and scrub the record in place. Idempotent; never raises."""
    if not hasattr(record, "action_id"):
        record.action_id = _action_id.get()
    if getattr(record, "_zoomadmin_scrubbed", False):
        return record
    record._zoomadmin_scrubbed = True
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: let the handler report it as usual
        return record
    cleaned = scrub(message)
    if cleaned != message or record.args:
        # Freeze the message: the args might hold the secret and be formatted again elsewhere.
        record.msg, record.args = cleaned, ()
    if record.exc_info and not record.exc_text:
        with contextlib.suppress(Exception):
            record.exc_text = _exception_formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


class ActionContextFilter(logging.Filter):
    """Adds `action_id` to records (for handlers used without `install()`)."""

    def filter(self, record):
        if getattr(record, "action_id", None) is None:
            record.action_id = _action_id.get()
        return True


class RedactSecretsFilter(logging.Filter):
    """Scrubs credentials from a record's message, args, exception and stack."""

    def filter(self, record):
        prepare_record(record)
        return True


_installed = False


def install():
    """Wrap the log record factory so every record is tagged and scrubbed at birth (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        return prepare_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "action_id", "_zoomadmin_scrubbed", "taskName"}
)
# Django's request loggers pass the request object; its repr can hold a query string.
_SKIPPED_EXTRAS = frozenset({"request", "server_time"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, action_id, extras, exc."""

    def format(self, record):
        prepare_record(record)
        entry = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "action_id", None) is not None:
            entry["action_id"] = record.action_id
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key in _SKIPPED_EXTRAS or key.startswith("_"):
                continue
            entry[key] = REDACTED if _SECRET_KEY_NAME.search(key) else scrub_value(value)
        request = record.__dict__.get("request")
        if request is not None and hasattr(request, "path"):
            entry["method"] = getattr(request, "method", None)
            entry["path"] = request.path  # the path only: a query string may carry a code
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = scrub(record.exc_text)
        if record.stack_info:
            entry["stack"] = scrub(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2025-01-01 12:00:00,000 INFO meetings.tasks [action=42] message` for a terminal."""

    def __init__(self, fmt=None, datefmt=None, style="%", **kwargs):
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", datefmt, style)

    def format(self, record):
        prepare_record(record)
        action_id = getattr(record, "action_id", None)
        line = super().format(record)
        if action_id is not None:
            head, sep, tail = line.partition(f" {record.name} ")
            if sep:
                line = f"{head} {record.name} [action={action_id}] {tail}"
        return scrub(line)
