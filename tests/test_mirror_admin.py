"""The mirror in the Django admin: to read, never to change; the stream key never shown."""

import pytest
from django.urls import reverse

from meetings.models import Meeting, PastMeeting, WebhookEvent, Webinar, ZoomAccount

pytestmark = pytest.mark.django_db

STREAM_KEY = "sk-live-9f8e7d6c5b4a"


@pytest.fixture
def account():
    return ZoomAccount.objects.create(name="Acme", kind="server_to_server", client_id="cid")


@pytest.fixture
def rows(account):
    meeting = Meeting.objects.create(
        account=account,
        zoom_id=85746065432,
        topic="Town hall",
        stream_url="rtmp://live.example.com/app",
        stream_key=STREAM_KEY,
        page_url="https://example.com/live",
    )
    webinar = Webinar.objects.create(account=account, zoom_id=94567123456, topic="Launch")
    past = PastMeeting.objects.create(
        account=account, meeting=meeting, uuid="JbkqFkfqQ0e7+CZluSnc1g==", zoom_id=85746065432
    )
    event = WebhookEvent.objects.create(
        account=account,
        event="meeting.live_streaming_started",
        object_id=85746065432,
        dedupe_key="k1",
        payload={"event": "meeting.live_streaming_started", "payload": {"object": {"id": 1}}},
    )
    return {"meeting": meeting, "webinar": webinar, "pastmeeting": past, "webhookevent": event}


MODELS = ["meeting", "webinar", "pastmeeting", "webhookevent"]


@pytest.mark.parametrize("model", MODELS)
def test_a_superuser_can_read_the_list_and_each_row(admin_client, rows, model):
    obj = rows[model]

    listing = admin_client.get(reverse(f"admin:meetings_{model}_changelist"))
    page = admin_client.get(reverse(f"admin:meetings_{model}_change", args=[obj.pk]))

    assert listing.status_code == 200
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # a view page, not a form
    assert reverse(f"admin:meetings_{model}_add").encode() not in listing.content


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_added_changed_or_deleted(admin_client, rows, model):
    obj = rows[model]
    count = type(obj).objects.count()

    add = admin_client.post(reverse(f"admin:meetings_{model}_add"), {})
    change = admin_client.post(
        reverse(f"admin:meetings_{model}_change", args=[obj.pk]), {"topic": "Hijacked"}
    )
    delete = admin_client.post(
        reverse(f"admin:meetings_{model}_delete", args=[obj.pk]), {"post": "yes"}
    )
    bulk_delete = admin_client.post(
        reverse(f"admin:meetings_{model}_changelist"),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )

    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert bulk_delete.status_code in (200, 302)  # no such action: nothing happens
    assert type(obj).objects.count() == count
    obj.refresh_from_db()
    assert getattr(obj, "topic", "") != "Hijacked"


def test_the_stream_key_is_shown_masked_only(admin_client, rows):
    meeting = rows["meeting"]

    page = admin_client.get(reverse("admin:meetings_meeting_change", args=[meeting.pk]))
    listing = admin_client.get(reverse("admin:meetings_meeting_changelist"), {"q": "Town"})

    assert STREAM_KEY.encode() not in page.content
    assert STREAM_KEY.encode() not in listing.content
    assert meeting.masked_stream_key.encode() in page.content
    assert b"rtmp://live.example.com/app" in page.content


def test_a_webhook_event_shows_its_stored_payload(admin_client, rows):
    page = admin_client.get(
        reverse("admin:meetings_webhookevent_change", args=[rows["webhookevent"].pk])
    )

    assert b"payload (stream keys removed)" in page.content.lower()
    assert b"meeting.live_streaming_started" in page.content


def test_staff_without_the_view_permission_cannot_read_the_mirror(client, django_user_model, rows):
    staff = django_user_model.objects.create_user("sam-staff", password="x", is_staff=True)
    client.force_login(staff)

    response = client.get(reverse("admin:meetings_meeting_changelist"))

    assert response.status_code == 403


def test_a_zoom_viewer_with_staff_access_can_read_but_not_change(client, django_user_model, rows):
    from django.contrib.auth.models import Group

    staff = django_user_model.objects.create_user("vic-viewer", password="x", is_staff=True)
    staff.groups.add(Group.objects.get(name="Zoom viewers"))
    client.force_login(staff)
    meeting = rows["meeting"]

    page = client.get(reverse("admin:meetings_meeting_change", args=[meeting.pk]))
    change = client.post(reverse("admin:meetings_meeting_change", args=[meeting.pk]), {})

    assert page.status_code == 200
    assert STREAM_KEY.encode() not in page.content
    assert change.status_code == 403


def test_the_meeting_search_finds_the_rows_djangos_own_search_finds(account, rf, admin_user):
    # MeetingAdmin compares an id term as a number so that indexes answer the search; the rows
    # must be the ones Django's search_fields find, whatever the term looks like.
    from django.contrib import admin as django_admin

    from meetings.admin.mirror import MeetingAdmin

    def meeting(zoom_id, topic, host_email="host@example.com", uuid=""):
        return Meeting.objects.create(
            account=account, zoom_id=zoom_id, topic=topic, host_email=host_email, uuid=uuid
        )

    meeting(85746065432, "Town hall", uuid="JbkqFkfqQ0e7+CZluSnc1g==")
    meeting(7, "Room 007 standup", host_email="ops-7@example.com")
    meeting(0, "Zero", uuid="85746065432")
    meeting(12345678, "Q3 review 85746065432", host_email="cfo@example.com")
    meeting(2**63 - 1, "Largest id")
    ours = MeetingAdmin(Meeting, django_admin.site)
    djangos = django_admin.ModelAdmin(Meeting, django_admin.site)
    djangos.search_fields = ours.search_fields
    request = rf.get("/")
    request.user = admin_user

    terms = [
        "town",
        "TOWN HALL",
        '"town hall"',
        "85746065432",
        "7",
        "007",
        "+7",
        "-7",
        "0",
        "-0",
        " 7 ",
        "1_2345678",
        "１２３４５６７８",
        str(2**63 - 1),
        str(2**63),
        str(-(2**63) - 1),
        "9" * 5000,
        "jbkqfkfqq0e7+czlusnc1g==",
        "JbkqFkfqQ0e7+CZluSnc1g==",
        "q3 85746065432",
        "'ops-7@'",
        "example.com 7",
        "nothing",
    ]
    for term in terms:
        found, _ = ours.get_search_results(request, Meeting.objects.all(), term)
        expected, _ = djangos.get_search_results(request, Meeting.objects.all(), term)
        assert sorted(m.pk for m in found) == sorted(m.pk for m in expected), term
    assert ours.get_search_results(request, Meeting.objects.all(), "7")[0].count() == 2


def test_the_admin_finds_a_meeting_by_its_id(admin_client, rows):
    listing = admin_client.get(reverse("admin:meetings_meeting_changelist"), {"q": "85746065432"})

    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [rows["meeting"]]


def test_meeting_types_are_named_in_the_filter_and_on_the_page(admin_client, rows):
    # The type filter offered "2", "3" and "8", and a meeting's page said "Type: 8".
    Meeting.objects.create(account=rows["meeting"].account, zoom_id=81111111111, type=8)
    changelist = admin_client.get(reverse("admin:meetings_meeting_changelist")).content.decode()
    assert "Scheduled (2)" in changelist and "Recurring, fixed time (8)" in changelist
    filtered = admin_client.get(reverse("admin:meetings_meeting_changelist"), {"type": "8"})
    assert [m.zoom_id for m in filtered.context["cl"].result_list] == [81111111111]
    assert (
        admin_client.get(reverse("admin:meetings_meeting_changelist"), {"type": "x"}).status_code
        == 200
    )
    page = admin_client.get(
        reverse("admin:meetings_meeting_change", args=[rows["meeting"].pk])
    ).content.decode()
    assert "Scheduled (2)" in page
