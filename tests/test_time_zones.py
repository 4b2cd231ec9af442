"""Times in each person's time zone: the one they chose, else their browser's, else the
server's; UTC on hover and in exports; every page says which zone it uses."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from meetings.models import UserPreferences

from .dashboard_data import make_account, make_action, make_meeting

pytestmark = pytest.mark.django_db

START = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)


@pytest.fixture
def meeting():
    return make_meeting(make_account(), topic="Late call", start_time=START)


def starts_cell(page):
    return re.search(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', page).groups()


def test_without_a_choice_or_a_browser_zone_times_are_in_the_server_s_zone(client, viewer, meeting):
    client.force_login(viewer)

    page = client.get(reverse("meetings")).content.decode()

    assert starts_cell(page) == (
        "2026-07-01T22:30:00+00:00",
        "Wed 1 Jul 2026, 22:30:00 UTC",
        "Wed 1 Jul 2026, 22:30",
    )
    assert "Times in UTC" in page


def test_the_browser_s_zone_is_used_and_utc_stays_on_hover(client, viewer, meeting):
    client.force_login(viewer)
    client.cookies["tz"] = "Europe%2FBerlin"  # as app.js sets it

    page = client.get(reverse("meetings")).content.decode()

    # 22:30 UTC is 00:30 the next day in Berlin (summer time)
    assert starts_cell(page) == (
        "2026-07-01T22:30:00+00:00",
        "Wed 1 Jul 2026, 22:30:00 UTC",
        "Thu 2 Jul 2026, 00:30",
    )
    assert "Times in Europe/Berlin" in page
    assert 'Starts <span class="muted">(Europe/Berlin)</span>' in page


def test_a_chosen_zone_wins_over_the_browser_s_and_a_forged_cookie_is_ignored(
    client, viewer, meeting
):
    client.force_login(viewer)
    client.cookies["tz"] = "../../etc/passwd"
    assert "Times in UTC" in client.get(reverse("meetings")).content.decode()

    response = client.post(
        reverse("preferences"), {"time_zone": "America/New_York", "next": "/meetings/"}
    )

    assert response.url == "/meetings/"
    assert UserPreferences.objects.get(user=viewer).time_zone == "America/New_York"
    client.cookies["tz"] = "Europe/Berlin"
    page = client.get(reverse("meeting", args=[meeting.pk])).content.decode()
    assert "Wed 1 Jul 2026, 18:30 EDT" in page
    assert "Times in America/New_York" in page


def test_an_unknown_zone_is_refused_with_a_message_and_nothing_saved(client, viewer):
    client.force_login(viewer)

    response = client.post(reverse("preferences"), {"time_zone": "Mars/Olympus"})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not UserPreferences.objects.exists()


def test_the_preference_page_says_which_zone_is_used_and_why(client, viewer):
    client.force_login(viewer)
    client.cookies["tz"] = "Asia/Tokyo"

    page = client.get(reverse("preferences")).content.decode()

    assert "Times are shown in <strong>Asia/Tokyo</strong>, your browser's time zone" in page


def test_the_audit_export_is_in_utc_whatever_the_reader_s_zone(client, admin_user, operator):
    account = make_account()
    make_action(account, state="succeeded", requested_at=START, requested_by=operator)
    UserPreferences.objects.create(user=admin_user, time_zone="Asia/Tokyo")
    client.force_login(admin_user)
    client.cookies["tz"] = "Asia/Tokyo"

    export = client.get(reverse("admin:meetings_action_export")).getvalue().decode()

    assert "2026-07-01T22:30:00+00:00" in export
