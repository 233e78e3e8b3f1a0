"""The original MaimConfig's clients, pointed at this service over real HTTP (`live_server`, `requests`).

Each test acts like one of them: the steps of the original's `test_api.py`, the request payloads of its
README and API documentation, and a web backend that calls `raise_for_status()` before reading
`success`, parses responses with strict models and pages with `page`/`size`. The service runs in open
mode, as the original did (no credential). Nothing is downloaded.
"""

import pytest
import requests

from tests.compat.original_client import (
    OriginalAgent,
    OriginalApiKey,
    OriginalClient,
    OriginalPage,
    OriginalPluginSetting,
    OriginalTenant,
    Refused,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def base_url(live_server, open_mode) -> str:
    return live_server.url


@pytest.fixture
def client(base_url):
    client = OriginalClient(base_url)
    yield client
    client.close()


@pytest.fixture
def legacy_client(base_url):
    client = OriginalClient(base_url, legacy_errors=True)
    yield client
    client.close()


def test_the_original_test_api_script(base_url):
    """The steps of the original's `test_api.py`: each checks `status_code == 200`, then reads `data`."""
    api = f"{base_url}/api/v2"
    assert requests.get(f"{base_url}/health", timeout=30).status_code == 200

    response = requests.post(f"{api}/tenants", timeout=30, json={
        "tenant_name": "测试公司", "tenant_type": "enterprise", "description": "API测试租户",
        "contact_email": "test@example.com", "tenant_config": {"timezone": "Asia/Shanghai", "language": "zh-CN"}})
    assert response.status_code == 200, response.text
    tenant_id = response.json()["data"]["tenant_id"]

    response = requests.post(f"{api}/agents", timeout=30, json={
        "tenant_id": tenant_id, "name": "测试助手", "description": "API测试Agent",
        "config": {"persona": "友好的测试助手", "bot_overrides": {"nickname": "小助", "platform": "test"},
                   "tags": ["测试", "助手"]}})
    assert response.status_code == 200, response.text
    agent_id = response.json()["data"]["agent_id"]

    response = requests.post(f"{api}/api-keys", timeout=30, json={
        "tenant_id": tenant_id, "agent_id": agent_id, "name": "测试密钥", "description": "API测试密钥",
        "permissions": ["chat"]})
    assert response.status_code == 200, response.text
    api_key = response.json()["data"]["api_key"]
    assert api_key.startswith("mmc_")

    assert requests.post(f"{api}/auth/parse-api-key", json={"api_key": api_key}, timeout=30).status_code == 200
    response = requests.post(f"{api}/auth/validate-api-key", timeout=30, json={
        "api_key": api_key, "required_permission": "chat", "check_rate_limit": True})
    assert response.status_code == 200 and response.json()["success"] is True

    response = requests.post(f"{api}/chat", timeout=30, json={
        "api_key": api_key, "message": "你好，这是一个测试消息", "conversation_id": "test_conv_001",
        "user_id": "test_user_001"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["response"] and data["conversation_id"] == "test_conv_001"


FULL_AGENT_CONFIG = {
    "persona": {
        "personality": "友好、专业的客服助手，具有耐心和细致的解答能力",
        "reply_style": "温和、专业、略带幽默",
        "interest": "客户服务、技术支持、产品咨询",
        "plan_style": "积极参与讨论，提供建设性意见",
        "private_plan_style": "耐心倾听，提供个性化建议",
        "states": [{"name": "正常", "keywords": ["你好", "帮助", "问题"]},
                   {"name": "专注", "keywords": ["处理", "解决", "分析"]}],
        "state_probability": 0.2,
    },
    "bot_overrides": {"platform": "qq", "qq_account": "123456789", "nickname": "客服小助手",
                      "platforms": ["discord", "slack"], "alias_names": ["小助手", "客服"]},
    "config_overrides": {
        "chat": {"max_context_size": 20, "interest_rate_mode": "medium", "planner_size": 2.0,
                 "mentioned_bot_reply": True, "auto_chat_value": 0.8, "enable_auto_chat_value_rules": True,
                 "talk_value": 0.9, "enable_talk_value_rules": True},
        "memory": {"max_memory_number": 150, "memory_build_frequency": 2},
        "mood": {"enable_mood": True, "mood_update_threshold": 1.2, "emotion_style": "温和友善"},
        "plugin": {"enable_plugins": True, "tenant_mode_disable_plugins": False,
                   "allowed_plugins": ["knowledge_base", "order_query", "ticket_system"],
                   "blocked_plugins": ["admin_only"]},
        "emoji": {"emoji_chance": 0.4, "do_replace": True, "content_filtration": True},
    },
}


def test_the_documented_agent_configuration_flow(client):
    """The original's API documentation, usage examples 7.1–7.3, step by step."""
    tenant = OriginalTenant.model_validate(client.call("POST", "/api/v2/tenants", json={
        "tenant_name": "我的公司", "tenant_type": "enterprise", "contact_email": "admin@company.com"}))
    agent = OriginalAgent.model_validate(client.call("POST", "/api/v2/agents", json={
        "tenant_id": tenant.tenant_id, "name": "客服助手", "description": "专业的客户服务AI助手",
        "config": FULL_AGENT_CONFIG}))
    config_url = f"/api/v2/agents/{agent.agent_id}/config"

    config = client.call("GET", config_url)
    assert config["persona"]["personality"] == FULL_AGENT_CONFIG["persona"]["personality"]
    assert config["config_overrides"]["chat"]["max_context_size"] == 20

    client.call("PUT", config_url, json={
        "persona": {"personality": "更新后：更专业、更高效的客服助手", "reply_style": "简洁、高效、专业"},
        "config_overrides": {"chat": {"max_context_size": 25, "talk_value": 1.1}}})
    key = OriginalApiKey.model_validate(client.call("POST", "/api/v2/api-keys", json={
        "tenant_id": tenant.tenant_id, "agent_id": agent.agent_id, "name": "生产环境密钥",
        "description": "用于生产环境的客服系统API调用", "permissions": ["chat", "config_read"]}))
    assert key.api_key.startswith("mmc_")

    client.call("PUT", config_url, json={"config_overrides": {"chat": {
        "max_context_size": 30, "interest_rate_mode": "fast", "talk_value": 1.2}}})
    client.call("PUT", config_url, json={"persona": {
        "personality": "经验丰富的技术专家，专业、耐心且乐于助人", "reply_style": "技术性、条理清晰、通俗易懂",
        "states": [{"name": "正常", "keywords": ["你好", "帮助", "问题"]},
                   {"name": "技术支持", "keywords": ["技术", "问题", "解决", "代码"]},
                   {"name": "教学", "keywords": ["学习", "教程", "解释"]}],
        "state_probability": 0.25}})
    client.call("PUT", config_url, json={"config_overrides": {"plugin": {
        "enable_plugins": True, "allowed_plugins": ["code_runner", "documentation_search", "file_manager"],
        "blocked_plugins": ["system_admin"]}}})

    final = client.call("GET", config_url)
    assert final["persona"]["personality"] == "经验丰富的技术专家，专业、耐心且乐于助人"
    assert final["persona"]["interest"] == FULL_AGENT_CONFIG["persona"]["interest"]  # merged, not reset
    assert final["config_overrides"]["chat"]["max_context_size"] == 30
    assert final["config_overrides"]["plugin"]["allowed_plugins"] == [
        "code_runner", "documentation_search", "file_manager"]
    assert final["config_overrides"]["memory"]["max_memory_number"] == 150

    verdict = client.raw("POST", "/api/v2/auth/validate-api-key",
                         json={"api_key": key.api_key, "required_permission": "chat"})
    assert verdict.status_code == 200 and verdict.json()["success"] is True


def test_the_readme_and_documented_payloads(client):
    """Tenant, agent, key, activity, usage and plugin payloads of the original's README and API docs."""
    tenant_id = client.call("POST", "/api/v2/tenants", json={"tenant_name": "demo", "tenant_type": "enterprise"})[
        "tenant_id"]
    agent_id = client.call("POST", "/api/v2/agents", json={"tenant_id": tenant_id, "name": "assistant",
                                                           "config": {}})["agent_id"]
    agent = OriginalAgent.model_validate(client.call("GET", f"/api/v2/agents/{agent_id}"))
    assert agent.config.persona == {} and agent.config.bot_overrides == {}
    key = OriginalApiKey.model_validate(client.call("POST", "/api/v2/api-keys", json={
        "tenant_id": tenant_id, "agent_id": agent_id, "name": "prod", "permissions": ["chat"]}))
    assert client.call("POST", "/api/v2/auth/validate-api-key",
                       json={"api_key": key.api_key, "required_permission": "chat"})["valid"] is True

    activity = client.call("PUT", "/api/v2/agent-activity",
                           json={"tenant_id": tenant_id, "agent_id": agent_id, "ttl_seconds": 43200})
    assert activity["ttl_seconds"] == 43200 and activity["agent_id"] == agent_id
    listed = OriginalPage.model_validate(client.call("GET", f"/api/v2/agent-activity?tenant_id={tenant_id}"))
    assert [item["agent_id"] for item in listed.items] == [agent_id]

    # The documented key update (its expires_at is in the past today: the key expires at once).
    updated = client.call("PUT", f"/api/v2/api-keys/{key.api_key_id}", json={
        "name": "string", "description": "string", "permissions": ["chat", "config_read", "config_write"],
        "expires_at": "2026-06-01T00:00:00Z"})
    assert updated["api_key_id"] == key.api_key_id and updated["updated_at"]
    assert OriginalApiKey.model_validate(updated).status == "expired"
    # The original's clients send this body-less POST with no content type (requests.post(url)).
    assert client.call("POST", f"/api/v2/api-keys/{key.api_key_id}/disable")["status"] == "disabled"
    assert client.call("DELETE", f"/api/v2/api-keys/{key.api_key_id}")["deleted_at"]  # requests.delete(url)

    entry = client.call("POST", "/api/v1/usage/log", json={
        "tenant_id": tenant_id, "agent_id": agent_id, "user_id": "user_001", "action": "chat_message",
        "details": {"message_length": 12, "platform": "qq"}, "timestamp": "2025-12-02T10:30:00Z"})
    assert (entry["tenant_id"], entry["agent_id"], entry["action"]) == (tenant_id, agent_id, "chat_message")
    assert entry["timestamp"].startswith("2025-12-02T10:30:00")

    settings_url = f"/api/v1/plugins/settings?tenant_id={tenant_id}"
    for name, enabled in (("天气插件", True), ("weather plugin", False)):
        response = client.raw("POST", settings_url, json={"plugin_name": name, "enabled": enabled,
                                                         "config": {"units": "metric"}})
        response.raise_for_status()
        assert OriginalPluginSetting.model_validate(response.json()).plugin_name == name
    response = client.raw("POST", f"{settings_url}&agent_id={agent_id}",
                          json={"plugin_name": "天气插件", "enabled": False, "config": {}})
    response.raise_for_status()
    merged = [OriginalPluginSetting.model_validate(item) for item in
              client.raw("GET", f"{settings_url}&agent_id={agent_id}").json()]
    assert {item.plugin_name: item.enabled for item in merged} == {"天气插件": False, "weather plugin": False}


def test_refusals_reach_the_clients_success_false_handling(legacy_client):
    """A web backend that calls raise_for_status() first: with legacy errors, a refusal is a `Refused`
    it shows to its user ("Agent name already exists"), not a generic transport failure."""
    tenant_id = legacy_client.call("POST", "/api/v2/tenants", json={"tenant_name": "t", "tenant_type": "personal"})[
        "tenant_id"]
    legacy_client.call("POST", "/api/v2/agents", json={"tenant_id": tenant_id, "name": "helper"})
    with pytest.raises(Refused) as refused:
        legacy_client.call("POST", "/api/v2/agents", json={"tenant_id": tenant_id, "name": "helper"})
    assert refused.value.error_code == "AGENT_002"
    for path, code in (("/api/v2/agents/agent_000000000000", "AGENT_004"),
                       ("/api/v2/tenants/tenant_000000000000", "TENANT_003"),
                       ("/api/v2/api-keys/key_000000000000", "KEY_001")):
        with pytest.raises(Refused) as refused:
            legacy_client.call("GET", path)
        assert refused.value.error_code == code
    response = legacy_client.raw("GET", "/api/v2/agents/agent_000000000000")
    assert response.headers["X-MaimConfig-Status"] == "404"

    # Safety: a validation error is never turned into a 200.
    with pytest.raises(requests.HTTPError) as failed:
        legacy_client.call("POST", "/api/v2/agents", json={"tenant_id": tenant_id})
    assert failed.value.response.status_code == 400


def test_without_the_switch_refusals_are_http_errors(client):
    with pytest.raises(requests.HTTPError) as failed:
        client.call("GET", "/api/v2/agents/agent_000000000000")
    assert failed.value.response.status_code == 404
    assert failed.value.response.json()["error_code"] == "AGENT_004"


def test_server_wide_legacy_errors(client, settings):
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    assert requests.get(f"{client.base_url}/info", timeout=30).json()["architecture"]["legacy_error_status"] is True
    with pytest.raises(Refused) as refused:
        client.call("GET", "/api/v2/tenants/tenant_000000000000")
    assert refused.value.error_code == "TENANT_003"


def test_key_list_page_and_paging_with_page_and_size(client):
    tenant_id = client.call("POST", "/api/v2/tenants", json={"tenant_name": "t", "tenant_type": "personal"})[
        "tenant_id"]
    agent_id = client.call("POST", "/api/v2/agents", json={"tenant_id": tenant_id, "name": "a"})["agent_id"]
    secrets = []
    for n in range(7):
        secrets.append(client.call("POST", "/api/v2/api-keys", json={
            "tenant_id": tenant_id, "agent_id": agent_id, "name": f"key {n}", "permissions": ["chat", "config read"]})[
            "api_key"])

    seen, page = [], 1
    while True:
        data = OriginalPage.model_validate(
            client.call("GET", f"/api/v2/api-keys?tenant_id={tenant_id}&agent_id={agent_id}&page={page}&size=3"))
        assert (data.total, data.size, data.pages, data.page) == (7, 3, 3, page)
        seen += [OriginalApiKey.model_validate(item) for item in data.items]
        if page >= data.pages:
            break
        page += 1
    assert len({key.api_key_id for key in seen}) == 7
    assert all(key.api_key.startswith("mmc_") and key.api_key not in secrets for key in seen)

    agents = OriginalPage.model_validate(client.call("GET", f"/api/v2/agents?tenant_id={tenant_id}&page=1&size=10"))
    assert [OriginalAgent.model_validate(item).config.config_overrides for item in agents.items] == [{}]
