"""The Simplified Chinese catalogue is complete and compiled, and the API speaks the caller's language."""

import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import translation

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
SKIP_TOP = {"locale", ".venv", "staticfiles", "data", "bench", "artifacts", "node_modules", ".git", ".pytest_cache",
            "tests"}
IGNORE = ["*/tests/*", "tests/*", "bench/*", "data/*", "staticfiles/*", "artifacts/*", "node_modules/*"]


def _untranslated(po: polib.POFile) -> list[str]:
    return [e.msgid for e in po if not e.obsolete and ("fuzzy" in e.flags or not (
        e.msgstr or (e.msgid_plural and all(e.msgstr_plural.values()))))]


def test_every_string_of_the_code_has_a_chinese_translation(tmp_path, monkeypatch, settings):
    """Extract the strings of the code as `make messages` does (into a copy of the catalogue, so the tree is
    not touched) and require a translation for each: a new string without one fails the suite."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for entry in Path(settings.BASE_DIR).iterdir():
        if entry.name not in SKIP_TOP and (entry.is_dir() or entry.suffix == ".py"):
            (tree / entry.name).symlink_to(entry)
    catalogue = tree / "locale" / "zh_Hans" / "LC_MESSAGES"
    catalogue.mkdir(parents=True)
    shutil.copy(PO, catalogue / "django.po")
    settings.LOCALE_PATHS = [tree / "locale"]
    monkeypatch.chdir(tree)
    call_command("makemessages", locale=["zh_Hans"], symlinks=True, ignore_patterns=IGNORE, no_obsolete=True,
                 add_location="file", verbosity=0)
    extracted = polib.pofile(str(catalogue / "django.po"))
    assert len(extracted) > 200
    missing = _untranslated(extracted)
    assert not missing, f"{len(missing)} strings without a zh_Hans translation (run `make messages`, translate " \
                        f"them in {PO.relative_to(settings.BASE_DIR)}): {missing[:20]}"


def test_the_committed_catalogue_is_complete_and_compiled():
    """Every entry of the .po is translated, and the compiled .mo the service reads gives that translation."""
    po = polib.pofile(str(PO))
    assert not _untranslated(po)
    with translation.override("zh-hans"):
        stale = [e.msgid for e in po if not e.msgid_plural and translation.gettext(e.msgid) != e.msgstr]
    assert not stale, f"locale/zh_Hans/LC_MESSAGES/django.mo is older than the .po (run `make messages`): {stale[:10]}"


@pytest.mark.django_db
@pytest.mark.parametrize("language, chinese", [
    ("zh", True), ("zh-CN", True), ("zh-Hans", True), ("zh-SG", True), ("zh-CN,zh;q=0.9,en;q=0.8", True),
    ("en", False), ("en-US,en;q=0.9", False), ("fr-FR", False), ("en;q=0.9,zh-CN;q=0.8", False), (None, False),
])
def test_api_message_and_error_follow_accept_language(operator_client, language, chinese):
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    body = operator_client.get("/api/v2/tenants/tenant_000000000000", **headers).json()
    assert body["error_code"] == "TENANT_003"  # codes never change
    if chinese:
        assert (body["message"], body["error"]) == ("租户不存在", "租户“tenant_000000000000”不存在。")
    else:
        assert (body["message"], body["error"]) == ("Tenant not found", "Tenant 'tenant_000000000000' does not exist.")


@pytest.mark.django_db
def test_validation_errors_in_chinese(operator_client):
    body = operator_client.post("/api/v2/tenants", {"tenant_type": "personal"}, format="json",
                                HTTP_ACCEPT_LANGUAGE="zh-CN").json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert body["message"] == "请求校验失败"
    assert body["error"].startswith("tenant_name: ") and "必填" in body["error"]


@pytest.mark.django_db
def test_success_message_in_chinese(operator_client):
    body = operator_client.get("/api/v2/usage/summary", HTTP_ACCEPT_LANGUAGE="zh-CN").json()
    assert body["success"] is True and body["message"] == "用量已汇总"
    body = operator_client.get("/api/v2/tenants", HTTP_ACCEPT_LANGUAGE="zh-CN").json()
    assert body["message"] == "已列出租户"  # a message="…" literal of a view, through console/api_texts.py
    assert operator_client.get("/api/v2/tenants", HTTP_ACCEPT_LANGUAGE="en").json()["message"] == "Tenants listed"


def test_generated_text_modules_are_up_to_date():
    """console/schema_texts.py and console/model_texts.py carry the schema's descriptions and the models'
    derived names to makemessages: regenerate them (`make messages`) when a schema or a model changes."""
    from console.management.commands.console_texts import rendered

    for path, text in rendered().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run `make messages`"


@pytest.mark.django_db
def test_admin_names_are_translated(admin_client):
    html = admin_client.get("/admin/apikeys/apikey/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "API 密钥" in html and "Apikeys" not in html


def test_editor_schema_is_translated():
    from console.config_editor import editor_schema_json

    with translation.override("zh-hans"):
        chinese = editor_schema_json()
    with translation.override("en"):
        english = editor_schema_json()
    assert "Core personality and identity." in english and "Core personality and identity." not in chinese
    assert '"$ref"' not in english and "$defs" not in english  # references inlined for json-editor


@pytest.mark.django_db
@pytest.mark.parametrize("language, expected", [
    ("zh-CN", "config_overrides.chat.max_context_size: 必须是 1 到 200 之间的整数。"),
    ("en", "config_overrides.chat.max_context_size: Must be an integer between 1 and 200."),
])
def test_agent_config_errors_follow_accept_language(operator_client, language, expected):
    """The configuration document's schema sentences (catalogue.schema.describe) are translated too."""
    from agents.tests.factories import AgentFactory

    agent = AgentFactory()
    body = operator_client.patch(f"/api/v2/agents/{agent.id}/config",
                                 {"config_overrides": {"chat": {"max_context_size": 0}}}, format="json",
                                 HTTP_ACCEPT_LANGUAGE=language).json()
    assert body["error_code"] == "AGENT_012"
    assert body["error"] == expected
