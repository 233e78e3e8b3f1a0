"""The operators' console in a real headless Chromium (Debian's, driven by Playwright; never downloaded):
log in, filter the key list, disable a key with the bulk action, then validate-api-key says AUTH_004."""

import json
import os
import urllib.request
from pathlib import Path

import pytest
from django.utils import timezone

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("MAIMCONFIG_REQUIRE_BROWSER"),
                       reason="needs Debian's chromium at /usr/bin/chromium (CI sets MAIMCONFIG_REQUIRE_BROWSER)"),
]


def _validate(base_url: str, raw_key: str) -> dict:
    request = urllib.request.Request(f"{base_url}/api/v2/auth/validate-api-key", method="POST",
                                     data=json.dumps({"api_key": raw_key, "check_rate_limit": False}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_admin_bulk_disable_in_chromium(live_server, django_user_model, monkeypatch):
    from playwright.sync_api import sync_playwright

    from apikeys.models import ApiKey
    from apikeys.tests.factories import ApiKeyFactory

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    django_user_model.objects.create_superuser("console", "console@example.com", "console-pass-1")
    target = ApiKeyFactory(name="browser-target")
    bystander = ApiKeyFactory(name="browser-bystander")
    ApiKeyFactory(name="already-off", disabled_at=timezone.now())
    assert _validate(live_server.url, target.raw_key)["success"] is True

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/apikeys/apikey/")
            page.fill("#id_username", "console")
            page.fill("#id_password", "console-pass-1")
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/apikeys/apikey/")

            # filter: computed status "active" in the sidebar, then search by name
            page.click("#changelist-filter a[href*='status=active']")
            page.wait_for_url("**status=active**")
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 2
            assert "already-off" not in page.inner_text("#result_list")
            page.fill("#searchbar", "browser-target")
            page.press("#searchbar", "Enter")
            page.wait_for_url("**q=browser-target**")
            assert rows.count() == 1
            assert target.key_hint in page.inner_text("#result_list")
            assert target.key_hash not in page.content()

            # bulk action
            page.check(f"input[name=_selected_action][value='{target.pk}']")
            page.select_option("select[name=action]", "disable_keys")
            page.click("button[name=index]")
            page.wait_for_selector(".messagelist .success")
            assert "1 API key disabled" in page.inner_text(".messagelist")
        finally:
            browser.close()

    assert ApiKey.objects.get(pk=target.pk).status == "disabled"
    assert ApiKey.objects.get(pk=bystander.pk).status == "active"
    body = _validate(live_server.url, target.raw_key)
    assert (body["success"], body["error_code"], body["data"]["status"]) == (False, "AUTH_004", "disabled")
    assert _validate(live_server.url, bystander.raw_key)["success"] is True
