"""The Zoom client: units at the HTTP edge (a requests adapter stub), then every method against
the sandbox over real HTTP."""

import email.utils
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from meetings.zoom.client import ZoomClient, encode_uuid, validate_zoom_id
from meetings.zoom.errors import (
    ZoomAuthError,
    ZoomBadRequest,
    ZoomBadResponse,
    ZoomConnectionError,
    ZoomNeedsReconnect,
    ZoomNotFound,
    ZoomNotHost,
    ZoomPageTokenExpired,
    ZoomRateLimited,
    ZoomServerError,
    ZoomServerErrorPage,
    ZoomTimeout,
)
from meetings.zoom.types import (
    LiveStream,
    Page,
    PastMeetingDetails,
    PastWebinarInstance,
    ZoomMeeting,
    ZoomUser,
)

BASE = "https://zoom.test/v2"
NOW = datetime(2024, 5, 31, 12, 0, 0, tzinfo=UTC)
SECRET_KEY = "sk-live-do-not-leak-7c1e"
JSON = {"Content-Type": "application/json;charset=UTF-8"}


# --- The stub at the HTTP edge ------------------------------------------------------------------


class StubAdapter(requests.adapters.BaseAdapter):
    """Answers each request with the next canned (status, headers, body) or raises it."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)
        self.sent = []
        self.timeouts = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        self.timeouts.append(timeout)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = answer
        response = requests.Response()
        response.status_code = status
        response.headers = requests.structures.CaseInsensitiveDict(headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        response._content = body.encode() if isinstance(body, str) else body
        response.request = request
        response.url = request.url
        return response

    def close(self):
        pass


def stub_client(*answers, **kwargs):
    adapter = StubAdapter(answers)
    session = requests.Session()
    session.mount("https://zoom.test/", adapter)
    kwargs.setdefault("clock", lambda: NOW)
    return ZoomClient(session, BASE, timeout=kwargs.pop("timeout", 2.5), **kwargs), adapter


def no_content():
    return (204, {}, b"")


def ok(data):
    return (200, JSON, data)


def path_of(request):
    return urlsplit(request.url).path


def query_of(request):
    return parse_qs(urlsplit(request.url).query)


# --- Requests: JSON bodies, Accept, timeout, throttle, on_response -------------------------------


def test_ending_a_meeting_sends_a_json_body_with_accept_json_and_a_timeout():
    client, adapter = stub_client(no_content())

    assert client.end_meeting(85746065123) is None

    request = adapter.sent[0]
    assert request.method == "PUT"
    assert request.url == "https://zoom.test/v2/meetings/85746065123/status"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.body) == {"action": "end"}
    assert adapter.timeouts == [2.5]


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda c: c.end_meeting(1), "PUT", "/v2/meetings/1/status", {"action": "end"}),
        (lambda c: c.recover_meeting(2), "PUT", "/v2/meetings/2/status", {"action": "recover"}),
        (lambda c: c.end_webinar(3), "PUT", "/v2/webinars/3/status", {"action": "end"}),
        (
            lambda c: c.stop_livestream(4),
            "PATCH",
            "/v2/meetings/4/livestream/status",
            {"action": "stop"},
        ),
        (
            lambda c: c.start_livestream(5),
            "PATCH",
            "/v2/meetings/5/livestream/status",
            {"action": "start"},
        ),
        (
            lambda c: c.start_livestream(6, active_speaker_name=False, display_name="Town hall"),
            "PATCH",
            "/v2/meetings/6/livestream/status",
            {
                "action": "start",
                "settings": {"active_speaker_name": False, "display_name": "Town hall"},
            },
        ),
        (
            lambda c: c.update_livestream(
                7, stream_url="rtmp://a.example/live", stream_key="k", page_url="https://e.x/p"
            ),
            "PATCH",
            "/v2/meetings/7/livestream",
            {"stream_url": "rtmp://a.example/live", "stream_key": "k", "page_url": "https://e.x/p"},
        ),
        (
            lambda c: c.update_livestream(
                8,
                stream_url="rtmp://a.example/live",
                stream_key="k",
                page_url="http://e.x/p",
                resolution="1080p",
            ),
            "PATCH",
            "/v2/meetings/8/livestream",
            {
                "stream_url": "rtmp://a.example/live",
                "stream_key": "k",
                "page_url": "http://e.x/p",
                "resolution": "1080p",
            },
        ),
    ],
)
def test_each_action_sends_its_documented_request(call, method, path, body):
    client, adapter = stub_client(no_content())

    call(client)

    request = adapter.sent[0]
    assert (request.method, path_of(request)) == (method, path)
    assert json.loads(request.body) == body
    assert request.headers["Content-Type"] == "application/json"


def test_throttle_is_asked_with_each_operations_rate_label_before_the_request():
    labels = []
    client, adapter = stub_client(
        no_content(),
        ok({"users": [], "next_page_token": ""}),
        throttle=lambda label: labels.append((label, len(adapter.sent))),
    )

    client.end_meeting(1)
    list(client.list_users())

    assert labels == [("light", 0), ("medium", 1)]


def test_on_response_reports_each_request_with_its_path_template_and_error():
    reports = []
    client, _ = stub_client(
        no_content(),
        (404, JSON, {"code": 3001, "message": "Meeting does not exist: 9."}),
        requests.exceptions.ConnectionError("Connection refused"),
        on_response=lambda *args: reports.append(args),
    )

    client.end_meeting(1)
    with pytest.raises(ZoomNotFound):
        client.end_meeting(9)
    with pytest.raises(ZoomConnectionError):
        client.end_meeting(9)

    assert [r[:3] for r in reports] == [
        ("PUT", "/meetings/{meetingId}/status", 204),
        ("PUT", "/meetings/{meetingId}/status", 404),
        ("PUT", "/meetings/{meetingId}/status", None),
    ]
    assert all(r[3] >= 0 for r in reports)
    assert reports[0][4] is None
    assert isinstance(reports[1][4], ZoomNotFound)
    assert isinstance(reports[2][4], ZoomConnectionError)


def test_a_failing_on_response_hook_does_not_change_zooms_answer():
    def broken_hook(*args):
        raise RuntimeError("metrics are down")

    client, _ = stub_client(no_content(), on_response=broken_hook)

    assert client.end_meeting(1) is None


def test_the_oauth_layers_errors_pass_through_and_are_reported():
    class RevokedSession(requests.Session):
        def request(self, *args, **kwargs):
            raise ZoomNeedsReconnect()

    reports = []
    client = ZoomClient(RevokedSession(), BASE, timeout=1, on_response=lambda *a: reports.append(a))

    with pytest.raises(ZoomNeedsReconnect):
        client.get_me()
    assert reports[0][2] is None
    assert isinstance(reports[0][4], ZoomNeedsReconnect)


def test_redirects_are_not_followed():
    client, adapter = stub_client((302, {"Location": "https://elsewhere.test/"}, b""))

    with pytest.raises(ZoomBadRequest) as caught:
        client.end_meeting(1)

    assert caught.value.status == 302
    assert len(adapter.sent) == 1


# --- 64-bit ids -----------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_every_64_bit_id_is_accepted_as_a_number_or_digits(number):
    assert validate_zoom_id(number) == number
    assert validate_zoom_id(str(number)) == number


@pytest.mark.parametrize(
    "bad",
    [
        0,
        -1,
        2**63,
        2**64,
        True,
        False,
        None,
        1.0,
        "",
        " 1",
        "1 ",
        "+1",
        "-1",
        "1e9",
        "0x1f",
        "١٢٣",  # Arabic-Indic digits: str.isdigit() says yes, Zoom says no
        "9" * 30,
        [1],
        "1/status",
    ],
)
def test_anything_but_a_positive_64_bit_id_is_refused_before_any_request(bad):
    client, adapter = stub_client()
    throttled = []
    client.throttle = throttled.append

    for call in (
        client.end_meeting,
        client.recover_meeting,
        client.end_webinar,
        client.get_meeting,
        client.get_webinar,
        client.list_past_webinar_instances,
        client.get_livestream,
        client.stop_livestream,
        client.start_livestream,
    ):
        with pytest.raises(ValueError, match=r"_id must be a Zoom id"):
            call(bad)
    with pytest.raises(ValueError, match=r"meeting_id must be a Zoom id"):
        client.update_livestream(bad, stream_url="u", stream_key="k", page_url="https://p.x/")

    assert adapter.sent == []
    assert throttled == []


@pytest.mark.parametrize("bad", [0, -5, "-5", "+5", 2**63, True, "", "a b", "x?y", "%2F", "é=="])
def test_past_meeting_refuses_bad_ids_and_bad_uuids_before_any_request(bad):
    client, adapter = stub_client()

    with pytest.raises(ValueError):
        client.get_past_meeting(bad)

    assert adapter.sent == []


# --- UUID encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uuid", "segment"),
    [
        ("JbkqFkfqQ0e7+CZluSnc1g==", "JbkqFkfqQ0e7%2BCZluSnc1g%3D%3D"),
        ("Ysqb7y8ZTbWaXWw2/Kb0Rw==", "Ysqb7y8ZTbWaXWw2%2FKb0Rw%3D%3D"),
        ("/ajXp112QmuoKj4854875==", "%252FajXp112QmuoKj4854875%253D%253D"),
        ("ab//cdQmuoKj4854875+==", "ab%252F%252FcdQmuoKj4854875%252B%253D%253D"),
    ],
)
def test_uuids_are_encoded_once_and_twice_when_they_start_with_a_slash_or_hold_two(uuid, segment):
    assert encode_uuid(uuid) == segment
    client, adapter = stub_client(ok(dict(PAST, uuid=uuid)))

    details = client.get_past_meeting(uuid)

    assert details.uuid == uuid
    # requests must not re-quote or unquote what we encoded: the wire carries it as built.
    assert adapter.sent[0].url == f"https://zoom.test/v2/past_meetings/{segment}"


def test_a_past_meeting_by_number_asks_for_the_latest_instance_by_id():
    client, adapter = stub_client(ok(PAST), ok(PAST))

    client.get_past_meeting(85746065123)
    client.get_past_meeting("85746065123")

    assert [path_of(r) for r in adapter.sent] == ["/v2/past_meetings/85746065123"] * 2


# --- Live stream validation -----------------------------------------------------------------------

GOOD_STREAM = {
    "stream_url": "rtmp://live.example.com/app",
    "stream_key": SECRET_KEY,
    "page_url": "https://example.com/live",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stream_url": "r" * 1025}, "stream_url"),
        ({"stream_url": ""}, "stream_url"),
        ({"stream_url": None}, "stream_url"),
        ({"stream_key": SECRET_KEY + "k" * 512}, "stream_key"),
        ({"stream_key": ""}, "stream_key"),
        ({"stream_key": 12345}, "stream_key"),
        ({"page_url": "https://example.com/" + "p" * 1010}, "page_url"),
        ({"page_url": "ftp://example.com/live"}, "page_url"),
        ({"page_url": "example.com/live"}, "page_url"),
        ({"page_url": "https://"}, "page_url"),
        ({"page_url": "https://exa mple.com/"}, "page_url"),
        ({"page_url": "javascript:alert(1)"}, "page_url"),
        ({"resolution": "4k"}, "resolution"),
        ({"resolution": 720}, "resolution"),
    ],
)
def test_a_live_stream_zoom_would_refuse_is_refused_naming_the_field_not_the_key(change, field):
    client, adapter = stub_client()

    with pytest.raises(ValueError, match=rf"^{field}\b") as caught:
        client.update_livestream(1, **{**GOOD_STREAM, **change})

    assert SECRET_KEY not in str(caught.value)
    assert SECRET_KEY not in repr(caught.value)
    assert adapter.sent == []


def test_the_longest_live_stream_values_zoom_allows_are_accepted():
    client, adapter = stub_client(no_content())

    client.update_livestream(
        1,
        stream_url="rtmp://" + "u" * 1017,
        stream_key="k" * 512,
        page_url="https://e.x/" + "p" * 1012,
        resolution="720p",
    )

    body = json.loads(adapter.sent[0].body)
    assert (len(body["stream_url"]), len(body["stream_key"]), len(body["page_url"])) == (
        1024,
        512,
        1024,
    )


def test_an_empty_resolution_means_zooms_default_and_is_not_sent():
    client, adapter = stub_client(no_content())

    client.update_livestream(1, **GOOD_STREAM, resolution="")

    assert "resolution" not in json.loads(adapter.sent[0].body)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "n" * 51}, "display_name"),
        ({"display_name": 5}, "display_name"),
        ({"active_speaker_name": "yes"}, "active_speaker_name"),
        ({"active_speaker_name": 1}, "active_speaker_name"),
    ],
)
def test_live_stream_start_settings_are_validated_like_zoom(kwargs, field):
    client, adapter = stub_client()

    with pytest.raises(ValueError, match=rf"^{field}\b"):
        client.start_livestream(1, **kwargs)

    assert adapter.sent == []


def test_a_display_name_of_fifty_characters_is_accepted():
    client, adapter = stub_client(no_content())

    client.start_livestream(1, display_name="n" * 50, active_speaker_name=True)

    assert json.loads(adapter.sent[0].body)["settings"] == {
        "active_speaker_name": True,
        "display_name": "n" * 50,
    }


# --- Answers ------------------------------------------------------------------------------------

PAST = {
    "uuid": "Ysqb7y8ZTbWaXWw2/Kb0Rw==",
    "id": 85746065123,
    "host_id": "x1yCzABCDEfg23HiJKl4mN",
    "type": 2,
    "topic": "All-hands",
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


def test_answers_are_parsed_into_typed_objects():
    client, _ = stub_client(
        ok({"id": 1, "status": "started", "start_time": "2024-05-31T11:00:00Z", "topic": "T"}),
        ok({"id": "KDcuGIm1QgePTO8WbOqwIQ", "email": "a@b.c", "type": 2, "account_id": "A"}),
        ok({**GOOD_STREAM, "resolution": "720p"}),
        ok(PAST),
    )

    meeting = client.get_meeting(1)
    me = client.get_me()
    stream = client.get_livestream(1)
    past = client.get_past_meeting(85746065123)

    assert isinstance(meeting, ZoomMeeting)
    assert meeting.status == "started"
    assert meeting.start_time == datetime(2024, 5, 31, 11, tzinfo=UTC)
    assert isinstance(me, ZoomUser)
    assert me.email == "a@b.c"
    assert isinstance(stream, LiveStream)
    assert stream.stream_key == SECRET_KEY
    assert isinstance(past, PastMeetingDetails)
    assert past.participants_count == 41


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ((200, {"Content-Type": "text/html"}, "<html>oops</html>"), "with text/html instead"),
        ((200, {}, '{"id": 1}'), "with no content type instead of JSON"),
        (
            (200, {"Content-Type": "application/xml"}, "<meeting><id>1</id></meeting>"),
            "with application/xml instead of JSON",
        ),
        ((200, JSON, "{not json"), "not valid JSON"),
        ((200, JSON, b"\xff\xfe\x00garbage"), "not valid JSON"),
        ((200, JSON, ""), "with no body"),
        ((204, {}, ""), "with no body"),
        ((200, JSON, "[1, 2]"), "expected a JSON object"),
        ((200, JSON, '{"topic": "no id"}'), "id: missing"),
        ((200, JSON, '{"id": 1, "start_time": "tomorrow-ish"}'), "start_time: not an ISO"),
    ],
)
def test_an_answer_that_is_not_what_zoom_documents_is_a_bad_response_not_a_crash(answer, words):
    client, _ = stub_client(answer)

    with pytest.raises(ZoomBadResponse, match=words) as caught:
        client.get_meeting(1)

    assert caught.value.permanent is True
    assert caught.value.status in (200, 204)


def test_an_error_answer_in_xml_is_a_bad_response_with_its_status():
    xml = "<?xml version='1.0'?><error><code>124</code><message>Invalid</message></error>"
    client, _ = stub_client((401, {"Content-Type": "application/xml"}, xml))

    with pytest.raises(ZoomBadResponse, match="HTTP 401 with application/xml") as caught:
        client.end_meeting(1)

    assert caught.value.status == 401


def test_a_proxys_html_error_page_is_a_retryable_server_error_and_never_quoted():
    page = "<html>502 Bad Gateway. Your request: Authorization: Bearer eyJsecret</html>"
    client, _ = stub_client(
        (502, {"Content-Type": "text/html"}, page),
        (500, JSON, "{broken"),
    )

    with pytest.raises(ZoomServerErrorPage) as caught:
        client.end_meeting(1)
    with pytest.raises(ZoomServerErrorPage) as broken:
        client.end_meeting(1)

    error = caught.value
    # Both a server error (what callers retry) and an answer we could not read.
    assert isinstance(error, ZoomServerError)
    assert isinstance(error, ZoomBadResponse)
    assert (error.status, error.permanent) == (502, False)
    assert (
        error.describe() == "Zoom had a server error (HTTP 502; its answer was text/html, not JSON)"
    )
    assert "eyJsecret" not in str(error)
    assert "eyJsecret" not in repr(error)
    assert broken.value.describe() == (
        "Zoom had a server error (HTTP 500; its answer was not valid JSON)"
    )


def test_an_error_answer_without_a_body_is_still_its_kind():
    client, _ = stub_client((404, {}, b""), (503, {"Content-Length": "0"}, b""))

    with pytest.raises(ZoomNotFound):
        client.end_meeting(1)
    with pytest.raises(ZoomServerError) as caught:
        client.end_meeting(1)
    assert caught.value.permanent is False


def test_a_200_in_zooms_error_shape_for_an_action_is_an_error():
    # webinarStatus documents HTTP 200 "Webinar plan subscription is missing".
    body = {"code": 200, "message": "Webinar plan subscription is missing."}
    client, _ = stub_client((200, JSON, body))

    with pytest.raises(ZoomBadRequest) as caught:
        client.end_webinar(99289110036)

    assert caught.value.code == 200
    assert caught.value.permanent is True
    assert "paid" in caught.value.describe()


def test_a_200_with_some_other_body_for_an_action_is_success():
    client, _ = stub_client((200, JSON, {"status": "ok"}), (202, {}, b""))

    assert client.end_meeting(1) is None
    assert client.end_meeting(1) is None


def test_a_429_takes_retry_after_from_the_injected_clock():
    later = (NOW + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        **JSON,
        "Retry-After": later,
        "X-RateLimit-Category": "Light",
        "X-RateLimit-Type": "QPS",
        "X-RateLimit-Limit": "30",
        "X-RateLimit-Remaining": "0",
    }
    client, _ = stub_client((429, headers, {"code": 429, "message": "Too many requests."}))

    with pytest.raises(ZoomRateLimited) as caught:
        client.end_meeting(1)

    error = caught.value
    assert (error.retry_after, error.category, error.limit_type) == (4, "Light", "QPS")
    assert (error.limit, error.remaining) == (30, 0)
    assert error.describe() == "Zoom is rate limiting this account; retrying after 4 s"


def test_a_429_with_an_html_body_is_still_a_rate_limit():
    client, _ = stub_client((429, {"Content-Type": "text/html", "Retry-After": "3"}, "<p>slow"))

    with pytest.raises(ZoomRateLimited) as caught:
        client.end_meeting(1)

    assert caught.value.retry_after == 3


@pytest.mark.parametrize(
    ("exc", "kind", "reached"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), ZoomTimeout, False),
        (requests.exceptions.ReadTimeout("read timed out"), ZoomTimeout, True),
        (
            requests.exceptions.ConnectionError(
                "Max retries exceeded (Caused by NewConnectionError('[Errno 111] Connection "
                "refused'))"
            ),
            ZoomConnectionError,
            False,
        ),
        (
            requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())"),
            ZoomConnectionError,
            True,
        ),
        (requests.exceptions.SSLError("certificate verify failed"), ZoomConnectionError, False),
    ],
)
def test_transport_failures_become_retryable_zoom_errors(exc, kind, reached):
    client, _ = stub_client(exc)

    with pytest.raises(kind) as caught:
        client.end_meeting(1)

    assert caught.value.permanent is False
    assert caught.value.status is None
    assert caught.value.may_have_reached_zoom is reached


def test_a_request_that_cannot_even_be_built_is_a_permanent_connection_error():
    client, _ = stub_client(requests.exceptions.InvalidURL("bad"))

    with pytest.raises(ZoomConnectionError) as caught:
        client.end_meeting(1)

    assert caught.value.permanent is True


# --- Paging -------------------------------------------------------------------------------------


def meetings_page(first, count, token="", total=None):
    return ok(
        {
            "page_size": 300,
            "total_records": total,
            "next_page_token": token,
            "meetings": [{"id": n, "topic": f"m{n}"} for n in range(first, first + count)],
        }
    )


def test_lists_follow_next_page_token_with_pages_of_300():
    client, adapter = stub_client(
        meetings_page(1, 300, "t1", 700),
        meetings_page(301, 300, "t2", 700),
        meetings_page(601, 100),
    )
    pages = []

    meetings = list(client.list_meetings("me", type="live", on_page=pages.append))

    assert [m.id for m in meetings] == list(range(1, 701))
    assert [(p.number, len(p.items), p.next_page_token) for p in pages] == [
        (1, 300, "t1"),
        (2, 300, "t2"),
        (3, 100, ""),
    ]
    assert pages[0].total_records == 700
    assert [query_of(r) for r in adapter.sent] == [
        {"type": ["live"], "page_size": ["300"]},
        {"type": ["live"], "page_size": ["300"], "next_page_token": ["t1"]},
        {"type": ["live"], "page_size": ["300"], "next_page_token": ["t2"]},
    ]


def test_pages_can_be_read_one_by_one_and_nothing_is_sent_before_the_first():
    client, adapter = stub_client(meetings_page(1, 2, "t1"), meetings_page(3, 1))

    pages = client.iter_pages_meetings("someone@example.com")
    assert adapter.sent == []
    first = next(pages)

    assert isinstance(first, Page)
    assert not first.is_last
    assert path_of(adapter.sent[0]) == "/v2/users/someone@example.com/meetings"
    assert next(pages).is_last
    assert list(pages) == []


def test_bad_list_arguments_fail_at_the_call_not_at_the_first_page():
    client, adapter = stub_client()

    with pytest.raises(ValueError, match="type must be one of"):
        client.list_meetings("me", type="all")
    with pytest.raises(ValueError, match="status must be one of"):
        client.list_users(status="deleted")
    with pytest.raises(ValueError, match="user_id"):
        client.list_webinars("../users")
    with pytest.raises(ValueError, match="user_id"):
        client.list_meetings("")

    assert adapter.sent == []


def test_a_refused_follow_up_page_means_the_page_token_expired():
    client, _ = stub_client(
        meetings_page(1, 300, "t1"),
        (400, JSON, {"code": 300, "message": "The next page token is invalid or expired."}),
    )

    with pytest.raises(ZoomPageTokenExpired) as caught:
        list(client.list_meetings("me"))

    assert isinstance(caught.value, ZoomBadRequest)
    assert caught.value.permanent is True


def test_a_repeated_page_token_stops_the_listing_instead_of_looping():
    client, adapter = stub_client(
        meetings_page(1, 1, "same"), meetings_page(2, 1, "same"), meetings_page(3, 1, "same")
    )

    with pytest.raises(ZoomBadResponse, match="same next_page_token"):
        list(client.list_meetings("me"))

    assert len(adapter.sent) == 2


def test_a_page_without_a_list_is_a_bad_response():
    client, _ = stub_client(ok({"meetings": {"id": 1}}))

    with pytest.raises(ZoomBadResponse, match="is not a list"):
        list(client.list_meetings("me"))


def test_users_and_webinars_list_too():
    client, adapter = stub_client(
        ok({"users": [{"id": "u1", "email": "a@b.c", "type": 1}], "next_page_token": ""}),
        ok({"webinars": [{"id": 99289110036, "type": 5}], "total_records": 1}),
    )

    users = list(client.list_users(status="pending"))
    webinars = list(client.list_webinars("u1"))

    assert [u.id for u in users] == ["u1"]
    assert [w.id for w in webinars] == [99289110036]
    assert query_of(adapter.sent[0]) == {"status": ["pending"], "page_size": ["300"]}
    assert path_of(adapter.sent[1]) == "/v2/users/u1/webinars"


def test_a_client_is_built_from_settings_when_not_told_otherwise(settings):
    settings.ZOOM_API_BASE_URL = "https://zoom.example/v2/"
    settings.ZOOM_TIMEOUT_SECONDS = 7.0

    client = ZoomClient(requests.Session())

    assert client.base_url == "https://zoom.example/v2"
    assert client.timeout == 7.0
    assert repr(client) == "<ZoomClient https://zoom.example/v2>"


# --- Against the sandbox, over HTTP -------------------------------------------------------------
# The zoom_sandbox fixture fails a test whose requests or answers break Zoom's OpenAPI contract,
# so each of these also proves the client's requests are spec-valid.


@pytest.fixture
def zoom(zoom_sandbox, zoom_sandbox_token):
    """A client on a plain session that only adds the bearer token: Accept and JSON bodies
    must come from the client itself."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {zoom_sandbox_token}"
        yield ZoomClient(session, zoom_sandbox.api_url, timeout=2)


@pytest.fixture
def world(zoom_sandbox):
    return zoom_sandbox.state


@pytest.fixture
def host(world):
    return world.add_user("host@sandbox.example", "Hana", "Host")


def logged(sandbox, since=0):
    return [r for r in sandbox.state.requests_since(since) if r.path.startswith("/v2/")]


def test_ending_a_live_meeting_ends_it_in_the_sandbox(zoom, zoom_sandbox, world, host):
    world.end_status_lag = 0  # Zoom's status lag: tests/test_sandbox.py, test_confirmations.py
    meeting = world.add_meeting(host["id"], "Town hall", status="started")

    zoom.end_meeting(meeting["id"])

    assert world.meetings[meeting["id"]]["status"] == "waiting"
    assert world.latest_instance(meeting["id"]) is not None
    (request,) = logged(zoom_sandbox)
    assert (request.method, request.path, request.status) == (
        "PUT",
        f"/v2/meetings/{meeting['id']}/status",
        204,
    )
    assert request.content_type == "application/json"
    assert request.json == {"action": "end"}
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers


def test_recovering_a_deleted_meeting_brings_it_back(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="deleted")

    zoom.recover_meeting(str(meeting["id"]))

    assert world.meetings[meeting["id"]]["status"] == "waiting"


def test_ending_a_live_webinar_ends_it(zoom, world, host):
    world.end_status_lag = 0  # Zoom's status lag: tests/test_sandbox.py, test_confirmations.py
    webinar = world.add_webinar(host["id"], "Launch", status="started")

    zoom.end_webinar(webinar["id"])

    assert world.webinars[webinar["id"]]["status"] == "ended"


def test_an_ended_webinar_s_instance_is_listed_among_its_past_instances(zoom, world, host):
    world.end_status_lag = 0  # Zoom's status lag: tests/test_sandbox.py, test_confirmations.py
    webinar = world.add_webinar(host["id"], "Launch", status="started")
    live_uuid = webinar["uuid"]
    assert zoom.list_past_webinar_instances(webinar["id"]) == ()

    zoom.end_webinar(webinar["id"])
    (instance,) = zoom.list_past_webinar_instances(webinar["id"])

    assert isinstance(instance, PastWebinarInstance)
    assert instance.uuid == live_uuid
    assert instance.start_time.tzinfo is not None


def test_a_meeting_and_a_webinar_are_read_with_their_status(zoom, world, host):
    meeting = world.add_meeting(host["id"], "Standup", status="started")
    webinar = world.add_webinar(host["id"], "Launch")

    got_meeting = zoom.get_meeting(meeting["id"])
    got_webinar = zoom.get_webinar(webinar["id"])

    assert isinstance(got_meeting, ZoomMeeting)
    assert (got_meeting.id, got_meeting.topic, got_meeting.status) == (
        meeting["id"],
        "Standup",
        "started",
    )
    assert got_meeting.uuid == meeting["uuid"]
    assert got_meeting.host_email == "host@sandbox.example"
    assert got_meeting.start_time.tzinfo is not None
    assert (got_webinar.id, got_webinar.topic, got_webinar.status) == (
        webinar["id"],
        "Launch",
        "waiting",
    )
    assert got_meeting.id > 2**32  # ids beyond 32 bits survive the round trip


def test_me_is_the_user_the_credentials_act_as(zoom):
    me = zoom.get_me()

    assert isinstance(me, ZoomUser)
    assert me.email == "owner@sandbox.example"
    assert me.account_id == "sandbox-account"


def test_a_past_meeting_by_id_is_its_latest_instance_with_all_fields(zoom, world, host):
    meeting = world.add_meeting(host["id"], "Retro")
    world.add_past_instance(meeting["id"], end_time=world.now() - 7200)
    latest = world.add_past_instance(meeting["id"], participants=12)

    details = zoom.get_past_meeting(meeting["id"])

    assert isinstance(details, PastMeetingDetails)
    assert details.uuid == latest["uuid"]
    assert (details.id, details.topic, details.participants_count) == (meeting["id"], "Retro", 12)
    assert details.user_email == "host@sandbox.example"
    assert details.end_time > details.start_time
    assert details.total_minutes == details.duration * 12


@pytest.mark.parametrize(
    ("uuid", "wire"),
    [
        ("JbkqFkfqQ0e7+CZluSnc1g==", "JbkqFkfqQ0e7%2BCZluSnc1g%3D%3D"),  # encoded once
        ("Ysqb7y8ZTbWaXWw2/Kb0Rw==", "Ysqb7y8ZTbWaXWw2%2FKb0Rw%3D%3D"),  # one "/": once
        ("/ajXp112QmuoKj4854875==", "%252FajXp112QmuoKj4854875%253D%253D"),  # leading "/"
        ("Wi7+Yx//2bUKLZ8fsT3qg==", "Wi7%252BYx%252F%252F2bUKLZ8fsT3qg%253D%253D"),  # "//"
    ],
)
def test_a_past_meeting_is_found_by_any_uuid(zoom, zoom_sandbox, world, host, uuid, wire):
    meeting = world.add_meeting(host["id"])
    world.add_past_instance(meeting["id"], uuid=uuid, end_time=world.now() - 7200)
    world.add_past_instance(meeting["id"])  # a later one: the UUID must pick the older

    details = zoom.get_past_meeting(uuid)

    assert details.uuid == uuid
    assert details.id == meeting["id"]
    (request,) = logged(zoom_sandbox)
    assert request.path == f"/v2/past_meetings/{wire}"


@pytest.mark.parametrize("slash", ["leading", "double"])
def test_a_uuid_with_slashes_encoded_only_once_is_not_found(
    zoom_sandbox, zoom_sandbox_session, world, host, slash
):
    # What the client avoids: the proof that double encoding is needed at all.
    meeting = world.add_meeting(host["id"])
    uuid = world.add_past_instance(meeting["id"], slash=slash)["uuid"]
    once = requests.utils.quote(uuid, safe="")

    answer = zoom_sandbox_session.get(f"{zoom_sandbox.api_url}/past_meetings/{once}", timeout=2)

    assert answer.status_code == 404
    assert answer.json()["code"] == 3001
    # Decoded once, the path has extra segments: no operation of the spec matches it.
    assert {v["kind"] for v in zoom_sandbox.take_contract_violations()} <= {"request", "response"}


def test_a_past_instance_s_participants_are_listed_across_pages(zoom, zoom_sandbox, world, host):
    meeting = world.add_meeting(host["id"], "All hands")
    instance = world.add_past_instance(meeting["id"], participants=7, slash="double")
    zoom.page_size = 3

    people = list(zoom.list_past_participants(instance["uuid"]))

    assert len(people) == 7
    assert people[0].name == "Hana Host" and people[0].user_email == host["email"]
    guests = [p for p in people if not p.id]
    assert all(p.user_email == "" for p in guests)  # no email for someone not signed in
    pages = [r for r in logged(zoom_sandbox) if r.path.endswith("/participants")]
    assert [r.status for r in pages] == [200, 200, 200]
    assert "%252F%252F" in pages[0].path  # a UUID with "//" is encoded twice
    assert zoom_sandbox.take_contract_violations() == []


def test_zoom_lists_nobody_for_an_instance_with_one_participant(zoom, world, host):
    meeting = world.add_meeting(host["id"])
    instance = world.add_past_instance(meeting["id"], participants=1)

    assert list(zoom.list_past_participants(instance["uuid"])) == []


def test_participants_of_an_instance_that_has_not_ended_are_not_found_3001(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started")

    with pytest.raises(ZoomNotFound) as caught:
        list(zoom.list_past_participants(meeting["id"]))

    assert caught.value.code == 3001


def test_a_meeting_that_has_not_ended_has_no_past_details(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started")

    with pytest.raises(ZoomNotFound) as caught:
        zoom.get_past_meeting(meeting["id"])

    assert caught.value.code == 3001
    assert caught.value.describe() == "Zoom: meeting not found or not ended (3001)"


def test_a_live_stream_is_configured_read_started_and_stopped(zoom, zoom_sandbox, world, host):
    meeting = world.add_meeting(host["id"], status="started")

    zoom.update_livestream(
        meeting["id"],
        stream_url="rtmp://live.example.com/app",
        stream_key=SECRET_KEY,
        page_url="https://example.com/live",
        resolution="1080p",
    )
    stream = zoom.get_livestream(meeting["id"])
    zoom.start_livestream(meeting["id"], active_speaker_name=True, display_name="Town hall")
    streaming = world.meetings[meeting["id"]]["livestreaming"]
    zoom.stop_livestream(meeting["id"])

    assert stream == LiveStream(
        stream_url="rtmp://live.example.com/app",
        stream_key=SECRET_KEY,
        page_url="https://example.com/live",
        resolution="1080p",
    )
    assert streaming is True
    assert world.meetings[meeting["id"]]["livestreaming"] is False
    start = next(r for r in logged(zoom_sandbox) if r.path.endswith("/livestream/status"))
    assert start.json == {
        "action": "start",
        "settings": {"active_speaker_name": True, "display_name": "Town hall"},
    }


def test_changing_a_live_stream_while_it_streams_is_refused_by_zoom(zoom, world, host):
    meeting = world.add_meeting(
        host["id"],
        status="started",
        livestream={**GOOD_STREAM},
        livestreaming=True,
    )

    with pytest.raises(ZoomBadRequest) as caught:
        zoom.update_livestream(meeting["id"], **GOOD_STREAM)

    assert caught.value.code == 3000
    assert caught.value.permanent is True
    assert SECRET_KEY not in caught.value.describe()


def test_starting_a_live_stream_twice_quickly_is_rate_limited_for_30_seconds(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started", livestream={**GOOD_STREAM})
    zoom.start_livestream(meeting["id"])

    with pytest.raises(ZoomRateLimited) as caught:
        zoom.start_livestream(meeting["id"])

    assert 28 <= caught.value.retry_after <= 31


# --- Paging against the sandbox -----------------------------------------------------------------


def test_700_meetings_come_in_three_pages_of_at_most_300(zoom, zoom_sandbox, world, host):
    ids = {world.add_meeting(host["id"])["id"] for _ in range(700)}
    pages = []

    meetings = list(zoom.list_meetings(host["id"], on_page=pages.append))

    assert {m.id for m in meetings} == ids
    assert len(meetings) == 700
    assert [len(p.items) for p in pages] == [300, 300, 100]
    assert [p.total_records for p in pages] == [700, 700, 700]
    assert pages[-1].is_last
    queries = [r.query for r in logged(zoom_sandbox)]
    assert [q.get("page_size") for q in queries] == ["300"] * 3
    assert "next_page_token" not in queries[0]
    assert queries[1]["next_page_token"] == pages[0].next_page_token
    assert queries[2]["next_page_token"] == pages[1].next_page_token


def test_live_meetings_are_listed_by_the_users_email(zoom, world, host):
    world.set_plan("business")  # below Business `type=live` is always empty (zoom/api#76)
    live = world.add_meeting(host["id"], status="started")
    world.add_meeting(host["id"])

    meetings = list(zoom.list_meetings("host@sandbox.example", type="live"))

    assert [m.id for m in meetings] == [live["id"]]


def test_the_dashboard_lists_live_meetings_from_two_days_back_to_today(
    zoom, zoom_sandbox, world, host
):
    # given a Business account with a live instant meeting, and the client's clock at 00:30 UTC
    world.set_plan("business")
    instant = world.add_meeting(host["id"], "Quick call", type=1, status="started")
    today = datetime.fromtimestamp(world.now(), UTC).replace(hour=0, minute=30)
    zoom.clock = lambda: today
    began = today - timedelta(days=1, hours=1, minutes=30)  # 23:00 the day before yesterday
    world.meetings[instant["id"]]["instance_started_at"] = began.timestamp()

    pages = list(zoom.iter_pages_dashboard_live_meetings())

    # then the instant meeting that began the day before yesterday is found, with its host
    (item,) = [m for page in pages for m in page.items]
    assert (item.id, item.topic, item.email) == (instant["id"], "Quick call", host["email"])
    (request,) = logged(zoom_sandbox)
    assert request.query == {
        "type": "live",
        "from": str((today - timedelta(days=2)).date()),
        "to": str(today.date()),
        "page_size": "300",
    }


def test_the_dashboard_refuses_a_pro_account_with_code_200(zoom, world):
    with pytest.raises(ZoomBadRequest) as refused:
        list(zoom.iter_pages_dashboard_live_meetings())

    assert (refused.value.status, refused.value.code) == (400, 200)
    assert refused.value.permanent


def test_users_and_webinars_are_listed_across_pages(zoom, world, host):
    for n in range(330):
        world.add_user(f"user{n}@sandbox.example")
    world.add_user("gone@sandbox.example", status="inactive")
    webinar_ids = {world.add_webinar(host["id"])["id"] for _ in range(301)}
    user_pages, webinar_pages = [], []

    users = list(zoom.list_users(on_page=user_pages.append))
    inactive = list(zoom.list_users(status="inactive"))
    webinars = list(zoom.list_webinars(host["id"], on_page=webinar_pages.append))

    assert len(users) == 332  # the owner, the host and 330 more
    assert len({u.id for u in users}) == 332
    assert [len(p.items) for p in user_pages] == [300, 32]
    assert [u.email for u in inactive] == ["gone@sandbox.example"]
    assert {w.id for w in webinars} == webinar_ids
    assert [len(p.items) for p in webinar_pages] == [300, 1]


def test_an_expired_page_token_stops_the_listing_with_a_clear_error(zoom, world, host):
    for _ in range(301):
        world.add_meeting(host["id"])
    pages = zoom.iter_pages_meetings(host["id"])
    next(pages)
    world.advance_clock(16 * 60)  # Zoom's next_page_token lives 15 minutes

    with pytest.raises(ZoomPageTokenExpired) as caught:
        next(pages)

    assert (caught.value.status, caught.value.code) == (400, 300)
    assert "start it again" in caught.value.describe()


# --- Each error kind, from the sandbox ------------------------------------------------------------


def test_ending_a_meeting_that_does_not_exist_is_not_found_3001(zoom):
    with pytest.raises(ZoomNotFound) as caught:
        zoom.end_meeting(2**63 - 1)

    error = caught.value
    assert (error.status, error.code, error.permanent) == (404, 3001, True)
    assert error.message == f"Meeting does not exist: {2**63 - 1}."


def test_ending_a_meeting_that_is_not_running_says_zoom_says_it_is_not_running(zoom, world, host):
    # Zoom's 3000 means "cannot access meeting info"; on an end it is a meeting not running.
    meeting = world.add_meeting(host["id"], status="waiting")
    webinar = world.add_webinar(host["id"], status="waiting")

    with pytest.raises(ZoomBadRequest) as ending_meeting:
        zoom.end_meeting(meeting["id"])
    with pytest.raises(ZoomBadRequest) as ending_webinar:
        zoom.end_webinar(webinar["id"])

    assert ending_meeting.value.code == 3000
    assert ending_meeting.value.describe() == "Zoom says this meeting is not running (3000)"
    assert ending_webinar.value.describe() == "Zoom says this webinar is not running (3000)"


def test_recovering_a_meeting_that_is_not_deleted_is_not_called_not_running(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="waiting")

    with pytest.raises(ZoomBadRequest) as caught:
        zoom.recover_meeting(meeting["id"])

    assert caught.value.code == 3000
    assert "not running" not in caught.value.describe()


def test_ending_a_meeting_one_is_not_the_host_of_is_not_host_3003(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started", host_locked=True)

    with pytest.raises(ZoomNotHost) as caught:
        zoom.end_meeting(meeting["id"])

    assert (caught.value.status, caught.value.code) == (400, 3003)
    assert caught.value.describe() == "Zoom: you are not the host of this meeting (3003)"
    assert world.meetings[meeting["id"]]["status"] == "started"


def test_ending_an_on_premise_meeting_is_refused_3063(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started", on_premise=True)

    with pytest.raises(ZoomBadRequest) as caught:
        zoom.end_meeting(meeting["id"])

    assert caught.value.code == 3063


def test_past_meetings_on_a_free_account_are_for_paid_accounts_only_200(
    zoom, zoom_sandbox, world, host
):
    meeting = world.add_meeting(host["id"])
    world.add_past_instance(meeting["id"])
    world.set_plan("free")

    with pytest.raises(ZoomBadRequest) as caught:
        zoom.get_past_meeting(meeting["id"])

    assert (caught.value.status, caught.value.code) == (400, 200)
    assert "paid" in caught.value.describe()


def test_a_validation_failure_carries_zooms_field_errors(zoom, zoom_sandbox, world, host):
    # The client refuses bad values itself, so reach past its validation to see Zoom's answer.
    meeting = world.add_meeting(host["id"], status="started")

    with pytest.raises(ZoomBadRequest) as caught:
        zoom._call("meetingStatus", meetingId=meeting["id"], body={"action": "pause"}, expect=None)

    assert (caught.value.status, caught.value.code) == (400, 300)
    assert caught.value.errors == [{"field": "action", "message": "Invalid field."}]
    assert caught.value.describe() == "Zoom: Validation Failed. — action: Invalid field. (300)"
    # The request broke the spec on purpose (action is an enum): clear what the fixture checks.
    assert zoom_sandbox.take_contract_violations()


def test_an_unknown_token_is_an_auth_error_124(zoom_sandbox):
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer not-a-token"
        client = ZoomClient(session, zoom_sandbox.api_url, timeout=2)

        with pytest.raises(ZoomAuthError) as caught:
            client.get_me()

    error = caught.value
    assert (error.status, error.code, error.token_invalid, error.permanent) == (
        401,
        124,
        True,
        True,
    )
    assert error.describe() == "Zoom: the access token is invalid or has expired (124)"
    assert "not-a-token" not in repr(error)


def test_a_revoked_token_is_an_auth_error_124(zoom, world):
    world.revoke_tokens()

    with pytest.raises(ZoomAuthError) as caught:
        zoom.get_me()

    assert caught.value.token_invalid


def test_a_429_carries_retry_after_from_zooms_iso_date_and_the_rate_limit_headers(zoom, world):
    world.set_rate_limit("light", 1)
    sandbox_now = datetime.fromtimestamp(world.now(), UTC)
    zoom.clock = lambda: sandbox_now
    zoom.get_me()

    with pytest.raises(ZoomRateLimited) as caught:
        zoom.get_me()

    error = caught.value
    assert (error.status, error.permanent) == (429, False)
    assert (error.category, error.limit_type, error.limit, error.remaining) == (
        "Light",
        "QPS",
        1,
        0,
    )
    # Zoom's Retry-After is a whole-second ISO date-time, at most a second or two away.
    assert 0 <= error.retry_after <= 2
    assert error.describe().startswith("Zoom is rate limiting this account; retrying after")


@pytest.mark.parametrize("skew", [-300, 300], ids=["worker 5 min behind", "worker 5 min ahead"])
def test_a_429_waits_as_long_as_zoom_asks_whatever_the_workers_clock(zoom, world, skew):
    # given a worker whose clock is five minutes off Zoom's
    world.set_rate_limit("light", 1)
    zoom.clock = lambda: datetime.fromtimestamp(world.now() + skew, UTC)
    zoom.get_me()

    with pytest.raises(ZoomRateLimited) as caught:
        zoom.get_me()

    # then the wait is Zoom's (a second or two, from the Date of the same answer): not zero,
    # which would hammer Zoom, and not five minutes, which would stall every click
    assert 0 < caught.value.retry_after <= 2


def test_a_daily_limit_waits_until_zoom_s_midnight_by_zoom_s_clock_not_the_machine_s(zoom, world):
    # given Zoom's clock half an hour ahead of this machine's (the sandbox's moved on, its Date
    # header with it; the token still valid), and the day's Light requests spent
    world.advance_clock(1800)
    world.set_plan("free")
    day = int(world.now() // 86400)
    world.daily_counts[("sandbox-account", "light", day)] = 6000

    with pytest.raises(ZoomRateLimited) as caught:
        zoom.get_me()

    # then the wait runs to 00:00 UTC on Zoom's clock, from Zoom's Date of the same answer:
    # half an hour less than by this machine's (the sandbox once sent two Date headers, the
    # machine's first, and the client read that one)
    to_zooms_midnight = 86400 - world.now() % 86400
    assert abs(caught.value.retry_after - to_zooms_midnight) <= 2


def test_the_sandbox_answers_one_date_header_on_its_own_clock(zoom_sandbox, zoom_sandbox_token):
    zoom_sandbox.state.advance_clock(1800)
    for url in (f"{zoom_sandbox.api_url}/users/me", f"{zoom_sandbox.url}/_sandbox/"):
        answer = requests.get(
            url, headers={"Authorization": f"Bearer {zoom_sandbox_token}"}, timeout=5
        )
        dates = answer.raw.headers.getlist("Date")
        assert len(dates) == 1, (url, dates)
        sent = email.utils.parsedate_to_datetime(dates[0]).timestamp()
        assert abs(sent - zoom_sandbox.state.now()) <= 2, url


def test_a_daily_limit_says_so(zoom, world):
    world.set_plan("free")
    day = int(world.now() // 86400)
    world.daily_counts[("sandbox-account", "light", day)] = 6000
    zoom.clock = lambda: datetime.fromtimestamp(world.now(), UTC)

    with pytest.raises(ZoomRateLimited) as caught:
        zoom.get_me()

    assert caught.value.limit_type == "Daily-limit"
    assert 0 < caught.value.retry_after <= 86400
    assert caught.value.describe().startswith("Zoom's daily request limit")


def test_a_server_error_is_retryable(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started")
    world.set_faults(error_rate=1.0)

    # Injected faults are a 500 JSON answer or a 503 HTML page, at random: both are server
    # errors; read until Zoom's own JSON one has come.
    for _ in range(40):
        with pytest.raises(ZoomServerError) as caught:
            zoom.end_meeting(meeting["id"])
        assert caught.value.permanent is False
        if caught.value.status == 500:
            break
    error = caught.value
    assert (error.status, error.code, error.permanent) == (500, 500, False)
    assert error.describe() == (
        "Zoom had a server error (HTTP 500): Internal Error. Please try again later. (500)"
    )
    assert world.meetings[meeting["id"]]["status"] == "started"


def test_a_load_balancers_html_page_is_a_retryable_server_error(zoom, world):
    world.set_faults(down=True, down_mode="503")

    with pytest.raises(ZoomServerErrorPage) as caught:
        zoom.get_me()

    error = caught.value
    assert isinstance(error, ZoomBadResponse)
    assert (error.status, error.code, error.permanent) == (503, None, False)
    assert (
        error.describe() == "Zoom had a server error (HTTP 503; its answer was text/html, not JSON)"
    )


def test_a_refused_connection_is_a_retryable_connection_error(zoom, world):
    world_was_up = zoom.get_me()
    world.set_faults(down=True)  # the sandbox closes its listening socket

    with pytest.raises(ZoomConnectionError) as caught:
        zoom.get_me()

    assert world_was_up
    assert not isinstance(caught.value, ZoomTimeout)
    assert (caught.value.status, caught.value.permanent) == (None, False)
    assert caught.value.describe() == "Could not reach Zoom: connection refused"


def test_a_slow_answer_is_a_timeout_that_may_have_reached_zoom(zoom_sandbox, zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started")
    world.set_faults(latency_ms=400)
    zoom.timeout = 0.1

    with pytest.raises(ZoomTimeout) as caught:
        zoom.end_meeting(meeting["id"])

    assert caught.value.permanent is False
    assert caught.value.may_have_reached_zoom is True
    assert caught.value.describe() == "Zoom did not answer in time: no answer within 0.1 s"
    # And it did reach Zoom: the meeting ends once the slow answer is done (which also keeps
    # the late request out of the next test's sandbox).
    deadline = time.monotonic() + 3
    while world.meetings[meeting["id"]]["status"] == "started" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert world.meetings[meeting["id"]]["status"] == "waiting"


def test_bad_ids_never_reach_zoom(zoom, zoom_sandbox):
    before = zoom_sandbox.state.request_seq

    for bad in (0, -1, 2**63, "-12", True, 1.0, None, "1 2"):
        with pytest.raises(ValueError):
            zoom.end_meeting(bad)
        with pytest.raises(ValueError):
            zoom.get_past_meeting(bad)
        with pytest.raises(ValueError):
            zoom.end_webinar(bad)

    assert zoom_sandbox.state.request_seq == before


def test_every_call_is_throttled_and_reported(zoom, world, host):
    meeting = world.add_meeting(host["id"], status="started")
    labels, reports = [], []
    zoom.throttle = labels.append
    zoom.on_response = lambda *args: reports.append(args)

    zoom.get_meeting(meeting["id"])
    list(zoom.list_users())
    zoom.end_meeting(meeting["id"])
    with pytest.raises(ZoomNotFound):
        zoom.get_meeting(12345678901)

    assert labels == ["light", "medium", "light", "light"]
    assert [(r[0], r[1], r[2]) for r in reports] == [
        ("GET", "/meetings/{meetingId}", 200),
        ("GET", "/users", 200),
        ("PUT", "/meetings/{meetingId}/status", 204),
        ("GET", "/meetings/{meetingId}", 404),
    ]
    assert isinstance(reports[-1][4], ZoomNotFound)
