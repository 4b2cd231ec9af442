"""Units: Zoom's error answers become the right ZoomError, in plain words; answers become types."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from meetings.zoom.errors import (
    ZoomAuthError,
    ZoomBadRequest,
    ZoomBadResponse,
    ZoomConnectionError,
    ZoomError,
    ZoomNeedsReconnect,
    ZoomNotFound,
    ZoomNotHost,
    ZoomRateLimited,
    ZoomServerError,
    ZoomTimeout,
    error_from_response,
    parse_retry_after,
)
from meetings.zoom.types import (
    LiveStream,
    PastMeetingDetails,
    ZoomMeeting,
    ZoomUser,
    ZoomWebinar,
)

NOW = datetime(2024, 5, 31, 12, 0, 0, tzinfo=UTC)


def headers(**values):
    return CaseInsensitiveDict({k.replace("_", "-"): v for k, v in values.items()})


# --- Dispatch on status and code ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "permanent"),
    [
        (400, {"code": 300, "message": "Unsupported Content Type"}, ZoomBadRequest, True),
        (400, {"code": 3003, "message": "You are not the meeting host."}, ZoomNotHost, True),
        (404, {"code": 3001, "message": "Meeting does not exist: 1."}, ZoomNotFound, True),
        (404, {"code": 1001, "message": "User does not exist: x."}, ZoomNotFound, True),
        (401, {"code": 124, "message": "Invalid access token."}, ZoomAuthError, True),
        (403, {"code": 200, "message": "Only available for paid account"}, ZoomBadRequest, True),
        (409, None, ZoomBadRequest, True),
        (429, {"code": 429, "message": "Too many requests"}, ZoomRateLimited, False),
        (500, {"code": 500, "message": "Internal error"}, ZoomServerError, False),
        (503, None, ZoomServerError, False),
        (408, None, ZoomTimeout, False),
    ],
)
def test_each_error_answer_becomes_its_kind(status, body, kind, permanent):
    error = error_from_response(status, body, headers(), now=NOW)

    assert type(error) is kind
    assert error.status == status
    assert error.permanent is permanent
    assert isinstance(error, ZoomError)
    if body:
        assert error.code == body["code"]
        assert error.message == body["message"]


def test_not_the_host_is_a_bad_request_so_callers_catching_bad_requests_see_it():
    error = error_from_response(400, {"code": 3003, "message": "x"}, headers())

    assert isinstance(error, ZoomBadRequest)
    assert error.describe() == "Zoom: you are not the host of this meeting (3003)"


def test_validation_errors_keep_their_fields_and_show_them_to_operators():
    body = {
        "code": 300,
        "message": "Validation Failed.",
        "errors": [{"field": "page_url", "message": "Invalid field."}, "junk"],
    }

    error = error_from_response(400, body, headers())

    assert error.errors == [{"field": "page_url", "message": "Invalid field."}]
    assert error.describe() == "Zoom: Validation Failed. — page_url: Invalid field. (300)"


def test_a_code_given_as_text_is_read_and_junk_codes_are_ignored():
    assert error_from_response(400, {"code": "3003"}, headers()).code == 3003
    assert error_from_response(400, {"code": True}, headers()).code is None
    assert error_from_response(400, {"code": [1]}, headers()).code is None
    assert error_from_response(400, ["not", "an", "object"], headers()).code is None


def test_token_invalid_is_only_code_124():
    assert error_from_response(401, {"code": 124, "message": "x"}, headers()).token_invalid
    assert not error_from_response(401, {"code": 4711, "message": "x"}, headers()).token_invalid
    assert not error_from_response(401, None, headers()).token_invalid


# --- Plain words --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (401, 124, "Zoom: the access token is invalid or has expired (124)"),
        (400, 200, "Zoom: this is only available for paid Zoom accounts (200)"),
        (404, 1001, "Zoom: the user does not exist (1001)"),
        (400, 1010, "Zoom: the user does not belong to this Zoom account (1010)"),
        (400, 3000, "Zoom: cannot access this meeting's information (3000)"),
        (404, 3001, "Zoom: meeting not found or not ended (3001)"),
        (400, 3003, "Zoom: you are not the host of this meeting (3003)"),
        (400, 3063, "Zoom: cannot end an on-premise user's meeting (3063)"),
        (400, 99999, "Zoom: Something Zoom said (99999)"),
    ],
)
def test_zoom_codes_are_described_in_plain_words(status, code, words):
    error = error_from_response(status, {"code": code, "message": "Something Zoom said"}, {})

    assert error.describe() == words
    assert str(error) == words


def test_code_300_shows_zooms_own_message_because_it_covers_many_faults():
    error = error_from_response(400, {"code": 300, "message": "Unsupported Content Type"}, {})

    assert error.describe() == "Zoom: Unsupported Content Type (300)"


def test_webinar_operations_say_webinar_not_meeting():
    error = error_from_response(404, {"code": 3001, "message": "x"}, {}, operation="webinarStatus")

    assert error.describe() == "Zoom: webinar not found or has expired (3001)"


def test_code_3001_means_not_ended_only_for_a_past_meeting_s_details():
    def words(operation):
        return error_from_response(404, {"code": 3001}, {}, operation=operation).describe()

    assert words("pastMeetingDetails") == "Zoom: meeting not found or not ended (3001)"
    assert words("meetingStatus") == "Zoom: meeting not found or has expired (3001)"
    assert words("meeting") == "Zoom: meeting not found or has expired (3001)"


def test_error_kinds_without_a_code_are_described_in_plain_words():
    assert ZoomServerError(status=503).describe() == "Zoom had a server error (HTTP 503)"
    assert ZoomNotFound(status=404).describe() == "Zoom: not found (HTTP 404)"
    assert ZoomAuthError(status=401).describe() == "Zoom refused the credentials (HTTP 401)"
    assert ZoomBadRequest(status=405).describe() == "Zoom answered HTTP 405"
    assert ZoomConnectionError("connection refused").describe() == (
        "Could not reach Zoom: connection refused"
    )
    assert ZoomTimeout("no answer within 2 s").describe() == (
        "Zoom did not answer in time: no answer within 2 s"
    )
    assert ZoomBadResponse("x answered HTTP 200 with text/html instead of JSON").describe() == (
        "Zoom sent an answer we could not read: x answered HTTP 200 with text/html instead of JSON"
    )
    assert ZoomNeedsReconnect().describe() == "Zoom connection needs to be reconnected"
    assert ZoomNeedsReconnect().permanent is True


def test_rate_limits_are_described_with_the_wait():
    assert ZoomRateLimited(retry_after=2.2).describe() == (
        "Zoom is rate limiting this account; retrying after 2 s"
    )
    assert ZoomRateLimited(retry_after=600).describe() == (
        "Zoom is rate limiting this account; retrying after 10 min"
    )
    assert ZoomRateLimited(retry_after=None).describe() == (
        "Zoom is rate limiting this account; retrying later"
    )
    daily = ZoomRateLimited(retry_after=3 * 3600, limit_type="Daily-limit")
    assert daily.describe() == (
        "Zoom's daily request limit for this account is used up; retrying after 3 h"
    )


def test_bad_responses_are_retryable_only_when_the_status_is_a_server_error():
    assert ZoomBadResponse("x", status=502).permanent is False
    assert ZoomBadResponse("x", status=200).permanent is True
    assert ZoomBadResponse("x", status=None).permanent is True


# --- 429 and Retry-After -------------------------------------------------------------------------


def test_a_429_reads_retry_after_as_an_iso_date_time_and_the_rate_limit_headers():
    answer = headers(
        Retry_After=(NOW + timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        X_RateLimit_Category="Light",
        X_RateLimit_Type="QPS",
        X_RateLimit_Limit="30",
        X_RateLimit_Remaining="0",
    )

    error = error_from_response(429, {"code": 429, "message": "Too many"}, answer, now=NOW)

    assert isinstance(error, ZoomRateLimited)
    assert error.retry_after == 7
    assert error.category == "Light"
    assert error.limit_type == "QPS"
    assert error.limit == 30
    assert error.remaining == 0
    assert error.permanent is False


@pytest.mark.parametrize("skew", [-300, -1.5, 0, 1.5, 300], ids=lambda s: f"worker {s:+}s")
def test_a_retry_after_date_is_a_wait_by_zooms_clock_whatever_the_workers_clock_says(skew):
    # given Zoom's answer at 12:00:00 by its clock, asking to come back at 12:00:02
    answer = headers(
        Date="Fri, 31 May 2024 12:00:00 GMT",
        Retry_After="2024-05-31T12:00:02Z",
        X_RateLimit_Type="QPS",
    )

    # when a worker whose clock is SKEW seconds off reads it
    error = error_from_response(429, None, answer, now=NOW + timedelta(seconds=skew))

    # then it waits Zoom's two seconds: not 0 (and hammering) when ahead, not minutes when behind
    assert error.retry_after == 2


def test_a_retry_after_date_falls_back_to_our_clock_when_zoom_sends_no_readable_date():
    for date in (None, "", "yesterday"):
        answer = headers(Retry_After="2024-05-31T12:00:05Z")
        if date is not None:
            answer["Date"] = date

        assert error_from_response(429, None, answer, now=NOW).retry_after == 5


def test_a_retry_after_in_seconds_needs_no_clock_at_all():
    answer = headers(Date="Fri, 31 May 2024 11:00:00 GMT", Retry_After="3")

    assert error_from_response(429, None, answer, now=NOW).retry_after == 3


def test_a_429_without_any_headers_still_is_a_rate_limit():
    error = error_from_response(429, None, headers(), now=NOW)

    assert isinstance(error, ZoomRateLimited)
    assert error.retry_after is None
    assert (error.category, error.limit_type, error.limit, error.remaining) == (None,) * 4


def test_a_429_for_starting_a_live_stream_reads_the_wait_from_zooms_message():
    body = {
        "code": 429,
        "message": "Too many requests submitted to start the livestream of this meeting: 1. "
        "If the livestream has not already started, retry making a new request after 30 seconds.",
    }

    assert error_from_response(429, body, headers(), now=NOW).retry_after == 30


def test_junk_rate_limit_numbers_are_ignored():
    answer = headers(X_RateLimit_Limit="lots", X_RateLimit_Remaining="-1")

    error = error_from_response(429, None, answer, now=NOW)

    assert (error.limit, error.remaining) == (None, None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2024-05-31T12:00:05Z", 5),
        ("2024-05-31T12:00:05+00:00", 5),
        ("2024-05-31T14:00:05+02:00", 5),
        ("2024-05-31T12:00:05", 5),  # no offset: UTC, as Zoom means it
        ("2024-05-31T12:00:05.500Z", 5.5),
        ("2024-05-31T11:00:00Z", 0),  # in the past: no wait, never negative
        ("2024-06-01T00:00:00Z", 12 * 3600),  # a daily limit resets at midnight UTC
        ("Fri, 31 May 2024 12:00:09 GMT", 9),  # an HTTP-date
        ("120", 120),
        ("0", 0),
        ("1.5", 1.5),
        (" 3 ", 3),
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1e3", None),
        ("2024-13-45T99:00:00Z", None),
    ],
)
def test_retry_after_is_read_from_iso_dates_seconds_and_http_dates(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_retry_after_never_goes_negative(when, now):
    seconds = parse_retry_after(when.isoformat(), now=now)

    assert seconds == max(0.0, (when - now).total_seconds())


# --- Types --------------------------------------------------------------------------------------

PAST_MEETING = {
    "uuid": "Ysqb7y8ZTbWaXWw2/Kb0Rw==",
    "id": 85746065123,
    "host_id": "x1yCzABCDEfg23HiJKl4mN",
    "type": 2,
    "topic": "Quarterly all-hands",
    "user_name": "Jill Chill",
    "user_email": "jchill@example.com",
    "start_time": "2021-07-13T21:44:51Z",
    "end_time": "2021-07-13T23:00:51Z",
    "duration": 76,
    "total_minutes": 3020,
    "participants_count": 41,
    "dept": "Developers",
    "source": "Zoom",
}


def test_past_meeting_details_keep_all_fourteen_fields():
    details = PastMeetingDetails.from_json(PAST_MEETING)

    assert details.id == 85746065123
    assert details.uuid == "Ysqb7y8ZTbWaXWw2/Kb0Rw=="
    assert details.start_time == datetime(2021, 7, 13, 21, 44, 51, tzinfo=UTC)
    assert details.end_time == datetime(2021, 7, 13, 23, 0, 51, tzinfo=UTC)
    assert (details.duration, details.total_minutes, details.participants_count) == (76, 3020, 41)
    assert (details.user_name, details.user_email, details.dept, details.source) == (
        "Jill Chill",
        "jchill@example.com",
        "Developers",
        "Zoom",
    )
    assert (details.host_id, details.type, details.topic) == (
        "x1yCzABCDEfg23HiJKl4mN",
        2,
        "Quarterly all-hands",
    )
    assert len(PastMeetingDetails.__dataclass_fields__) == 14


def test_missing_optional_fields_become_empty_and_ids_given_as_text_are_numbers():
    meeting = ZoomMeeting.from_json({"id": "93398114182", "topic": "Standup"})

    assert meeting.id == 93398114182
    assert meeting.start_time is None
    assert meeting.status == ""
    assert meeting.duration is None


def test_meetings_and_webinars_are_different_types_with_the_same_fields():
    webinar = ZoomWebinar.from_json({"id": 99289110036, "status": "started", "type": 5})

    assert not isinstance(webinar, ZoomMeeting)
    assert webinar.status == "started"
    assert ZoomWebinar.__dataclass_fields__.keys() == ZoomMeeting.__dataclass_fields__.keys()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"id": None},
        {"id": True},
        {"id": -1},
        {"id": 2**63},
        {"id": "12a"},
        {"id": 1.5},
        {"id": 1, "start_time": "yesterday"},
        {"id": 1, "start_time": 17},
        {"id": 1, "duration": "long"},
        {"id": 1, "topic": {"nested": 1}},
        ["not", "an", "object"],
    ],
)
def test_malformed_answers_are_refused_naming_the_field(data):
    with pytest.raises(ValueError, match=r"^(id|start_time|duration|topic|ZoomMeeting)"):
        ZoomMeeting.from_json(data)


def test_user_from_users_me():
    user = ZoomUser.from_json(
        {
            "id": "KDcuGIm1QgePTO8WbOqwIQ",
            "email": "jchill@example.com",
            "first_name": "Jill",
            "last_name": "Chill",
            "type": 2,
            "status": "active",
            "account_id": "q6gBJVO5TzexKYTb_I2rpg",
        }
    )

    assert user.id == "KDcuGIm1QgePTO8WbOqwIQ"
    assert user.name == "Jill Chill"
    assert user.account_id == "q6gBJVO5TzexKYTb_I2rpg"


def test_a_live_streams_repr_hides_its_key():
    stream = LiveStream.from_json(
        {
            "stream_url": "rtmp://live.example.com/app",
            "stream_key": "sk-very-secret-0042",
            "page_url": "https://example.com/live",
            "resolution": "1080p",
        }
    )

    assert stream.stream_key == "sk-very-secret-0042"
    assert "sk-very-secret-0042" not in repr(stream)
    assert "sk-very-secret-0042" not in str(stream)
    assert "stream_key=<hidden>" in repr(stream)
    assert stream.configured


def test_a_live_stream_that_is_not_configured_says_so():
    stream = LiveStream.from_json({})

    assert not stream.configured
    assert "stream_key=''" in repr(stream)
