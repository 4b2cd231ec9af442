"""A missing scope and the webhook settings on a phone: the scope names are long and unbroken,
and the warning that names them must stay in sight without a sideways scroll."""

from playwright.sync_api import expect

from .conftest import PHONE


def test_a_missing_scope_is_named_in_sight_on_a_phone_on_the_overview_and_the_connection_page(
    page, live_server, sign_in, screenshot, admin_user, transactional_db
):
    from tests.dashboard_data import make_account

    account = make_account(
        "Sandbox (demo)",
        scope_refusals={"meetingLiveStreamStatusUpdate": "2026-12-07T01:00:00+00:00"},
    )
    page.set_viewport_size(PHONE)
    sign_in(page, admin_user)
    for path, name in (("/", "overview"), (f"/connections/{account.pk}/", "connection")):
        page.goto(f"{live_server.url}{path}")
        screenshot(page, name)
        warning = page.locator(".scope-refused").first
        expect(warning).to_contain_text("start and stop live streams")
        expect(warning).to_contain_text("meeting:update:livestream_status:admin")
        expect(warning).to_contain_text("meeting:write:admin")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        for wrap in page.locator(".table-wrap").all():
            assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), path
    expect(page.get_by_text("/webhooks/zoom/")).to_be_visible()
