"""The console in Debian's Chromium (Playwright, headless, never downloaded), in Chinese and in English:
log in; the dashboard's figures and charts from known seeded data; online / offline / never seen in the
agent list; a field deep in the configuration edited with the structured editor and saved, and a refused
value shown at its field; a key rotated with a grace period; the language switcher.

PNG screenshots of every page go to `artifacts/screenshots/` (MAIMCONFIG_SCREENSHOT_DIR overrides it);
CI keeps that folder as its artifact.
"""

import json
import os
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from console.tests.seed import seed_fleet

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]
SHOTS = Path(os.environ.get("MAIMCONFIG_SCREENSHOT_DIR") or Path(django_settings.BASE_DIR) / "artifacts" / "screenshots")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("MAIMCONFIG_REQUIRE_BROWSER"),
                       reason="needs Debian's chromium at /usr/bin/chromium (CI sets MAIMCONFIG_REQUIRE_BROWSER)"),
]

TEXT = {
    "zh-CN": {"lang": "zh-hans", "brand": "MaimConfig 控制台", "online": "在线", "offline": "离线",
              "never": "从未上线", "rotated": "API 密钥已轮换", "save": "保存"},
    "en": {"lang": "en", "brand": "MaimConfig console", "online": "online", "offline": "offline",
           "never": "never seen", "rotated": "API key rotated", "save": "Save"},
}


def _validate(base_url: str, raw_key: str) -> dict:
    request = urllib.request.Request(f"{base_url}/api/v2/auth/validate-api-key", method="POST",
                                     data=json.dumps({"api_key": raw_key, "check_rate_limit": False}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _shot(page, locale: str, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{locale}-{name}.png"), full_page=True)


def _kpi(page, name: str) -> str:
    return page.inner_text(f"[data-kpi='{name}'] .kpi-value").strip()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_console_in_chromium(live_server, django_user_model, settings, tmp_path, monkeypatch, locale):
    from playwright.sync_api import sync_playwright

    from agents.models import Agent
    from apikeys.keys import hash_key
    from apikeys.models import ApiKey
    from apikeys.tests.factories import ApiKeyFactory
    from agents import configdoc

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    text = TEXT[locale]
    fleet = seed_fleet(settings, tmp_path)
    agent = fleet["online"]
    from agents import services as agent_services

    agent_services.agent_config_write(agent=Agent.objects.get(pk=agent.pk), mode="replace", document={
        "persona": {"personality": "乐于助人"},
        "config_overrides": {
            "chat": {"max_context_size": 18, "talk_value": 1.0},
            "model": {"api_providers": [{"name": "MyOpenAI", "base_url": "https://api.example.com/v1",
                                         "api_key": "sk-secret-provider-key"}]},
        },
    })
    key = ApiKeyFactory(agent=agent, name="rotate-me")
    django_user_model.objects.create_superuser("console", "console@example.com", "console-pass-1")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            assert page.get_attribute("html", "lang") == text["lang"]
            _shot(page, locale, "01-login")
            page.fill("#id_username", "console")
            page.fill("#id_password", "console-pass-1")
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/admin/")

            # --- dashboard: the seeded figures, eight charts, "view site" -> API docs -----------------
            assert text["brand"] in page.inner_text("#site-name")
            assert page.get_attribute("#console-api-docs", "href") == "/docs"
            assert _kpi(page, "tenants") == "2 / 2"
            assert [_kpi(page, k) for k in ("agents-online", "agents-offline", "agents-never-seen")] == ["1", "1", "1"]
            assert [_kpi(page, k) for k in ("keys-active", "keys-disabled", "keys-expiring")] == ["3", "1", "1"]
            assert _kpi(page, "daily-validations") == "150 / 9"
            assert _kpi(page, "hourly-chat") == "15" and _kpi(page, "daily-chat") == "20"
            assert _kpi(page, "daily-tokens") == "400000 / 100000"
            assert _kpi(page, "daily-cost") == "3.5000"
            assert page.locator("svg.console-chart").count() == 8
            assert page.locator("svg.console-chart rect[data-field='validation_refused']").count() == 2 + 1
            legend = page.get_attribute("[data-chart-card='tokens-daily'] figcaption [data-field='tokens_in']", "data-total")
            assert legend == "400000"
            assert page.locator("#top-tenants tbody tr").first.get_attribute("data-id") == fleet["acme"].id
            assert page.inner_text("#top-agents tbody tr >> nth=0").startswith(agent.name)
            _shot(page, locale, "02-dashboard")

            # --- agents: online / offline / never seen, and the filter ------------------------------
            page.goto(f"{live_server.url}/admin/agents/agent/")
            for state, seeded in (("online", "online"), ("offline", "offline"), ("never_seen", "never")):
                row = page.locator("#result_list tbody tr", has_text=fleet[seeded].name)
                assert row.locator(f".liveness-{state}").count() == 1
            assert text["never"] in page.inner_text("#result_list")
            _shot(page, locale, "03-agents")
            page.goto(f"{live_server.url}/admin/agents/agent/?liveness=never_seen")
            assert page.locator("#result_list tbody tr").count() == 1
            assert fleet["never"].name in page.inner_text("#result_list")

            # --- the structured editor: a field deep in a section, saved through the services -------
            change_url = f"{live_server.url}/admin/agents/agent/{agent.pk.replace('_', '_5F')}/change/"
            page.goto(change_url)
            page.wait_for_selector("[data-config-editor][data-editor-ready='1']")
            field = page.locator("[data-schemapath='root.config_overrides.chat.max_context_size'] input")
            assert field.input_value() == "18"
            assert "sk-secret-provider-key" not in page.content()  # provider keys masked
            effective = page.inner_text(".config-editor-effective-json")
            assert '"mentioned_bot_reply": true' in effective  # a default the stored document lacks
            field.fill("42")
            field.press("Tab")
            _shot(page, locale, "04-config-editor")
            page.click("input[name=_continue]")
            page.wait_for_selector("[data-config-editor][data-editor-ready='1']")
            saved = Agent.objects.get(pk=agent.pk).config
            assert saved["config_overrides"]["chat"]["max_context_size"] == 42
            assert saved["persona"]["personality"] == "乐于助人"
            assert configdoc.provider_api_key(Agent.objects.get(pk=agent.pk), "MyOpenAI") == "sk-secret-provider-key"

            # a refused value (the schema's maximum is 200) comes back at its field, nothing saved
            page.click(".config-editor-mode")  # raw JSON mode
            raw = json.loads(page.input_value("textarea[name=config]"))
            raw["config_overrides"]["chat"]["max_context_size"] = 9999
            page.fill("textarea[name=config]", json.dumps(raw))
            page.click("input[name=_continue]")
            error = page.wait_for_selector(
                "[data-error-path='root.config_overrides.chat.max_context_size']")
            assert "200" in error.inner_text()
            _shot(page, locale, "05-config-error")
            assert Agent.objects.get(pk=agent.pk).config["config_overrides"]["chat"]["max_context_size"] == 42

            # --- rotate a key with a grace period ----------------------------------------------------
            page.goto(f"{live_server.url}/admin/apikeys/apikey/{key.pk.replace('_', '_5F')}/change/")
            page.click("#rotate-key")
            page.select_option("#id_grace_seconds", "3600")
            _shot(page, locale, "06-rotate")
            page.click("#rotate-submit")
            page.wait_for_selector("code.secret")
            assert text["rotated"] in page.inner_text("#content")
            secret = page.inner_text("code.secret").strip()
            assert hash_key(secret) == ApiKey.objects.get(pk=key.pk).key_hash
            assert _validate(live_server.url, secret)["success"] is True
            assert _validate(live_server.url, key.raw_key)["success"] is True  # still valid during the grace
            page.click("#secret-done")
            assert secret not in page.content()

            # --- the language switcher ---------------------------------------------------------------
            other = "en" if locale == "zh-CN" else "zh-hans"
            page.select_option("#console-language-select", other)
            page.wait_for_load_state()
            page.wait_for_function(f"document.documentElement.lang === '{other}'")
            assert page.get_attribute("html", "lang") == other
        finally:
            browser.close()
