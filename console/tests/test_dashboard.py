import re

import pytest
from django.contrib.admin.utils import unquote

from console.tests.seed import seed_fleet


@pytest.fixture
def fleet(settings, tmp_path):
    return seed_fleet(settings, tmp_path)


@pytest.fixture
def admin_client_en(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "boss-pass-1")
    client.force_login(user)
    return client


def _kpi(html: str, name: str) -> str:
    match = re.search(rf'data-kpi="{re.escape(name)}">.*?<div class="kpi-value">(?:<a [^>]*>)?(.*?)(?:</a>)?</div>',
                      html, re.S)
    assert match, name
    return match.group(1).strip()


def _legend(html: str, chart: str) -> dict[str, str]:
    card = re.search(rf'data-chart-card="{chart}">(.*?)</figure>', html, re.S).group(1)
    return dict(re.findall(r'data-field="(\w+)" data-total="([\d.]+)"', card))


@pytest.mark.django_db
def test_dashboard_figures_from_the_counters(admin_client_en, fleet):
    response = admin_client_en.get("/admin/", HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    assert "MaimConfig console" in html and 'href="/docs"' in html
    assert _kpi(html, "tenants") == "2 / 2"
    assert (_kpi(html, "agents-online"), _kpi(html, "agents-offline"), _kpi(html, "agents-never-seen")) == ("1", "1", "1")
    assert (_kpi(html, "keys-active"), _kpi(html, "keys-disabled"), _kpi(html, "keys-expiring")) == ("2", "1", "1")
    assert _kpi(html, "hourly-validations") == "120 / 7"
    assert _kpi(html, "daily-validations") == "150 / 9"
    assert _kpi(html, "daily-chat") == "20" and _kpi(html, "hourly-chat") == "15"
    assert _kpi(html, "daily-tokens") == "400000 / 100000"
    assert _kpi(html, "daily-cost") == "3.5000"  # 0.4 M × 5 + 0.1 M × 15
    assert _kpi(html, "daily-errors") == "3" and _kpi(html, "hourly-errors") == "0"
    assert _legend(html, "validations-daily") == {"validation_accepted": "150", "validation_refused": "9"}
    assert _legend(html, "chat-hourly") == {"chat_requests": "15", "upstream_errors": "0"}
    assert html.count('class="console-chart"') == 8
    top_tenants = re.search(r'id="top-tenants">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'data-id="(\w+)"', top_tenants) == [fleet["acme"].id, fleet["beta"].id]
    refused = re.search(r'id="refused-by-reason">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'data-code="(\w+)"', refused) == ["AUTH_003", "AUTH_004"]
    refused_48h = re.search(r'id="refused-by-reason-hourly">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'data-code="(\w+)"', refused_48h) == ["AUTH_003"]


@pytest.mark.django_db
def test_dashboard_in_chinese(admin_client_en, fleet):
    html = admin_client_en.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans"' in html
    assert "MaimConfig 控制台" in html and "在线" in html


@pytest.mark.django_db
def test_dashboard_query_count_does_not_grow_with_the_fleet(admin_client_en, fleet):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.tests.factories import AgentFactory
    from metering.services import Increment, counters_add

    def statements() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client_en.get("/admin/").status_code == 200
        return len([q for q in queries if "SAVEPOINT" not in q["sql"]])

    before = statements()
    agents = AgentFactory.create_batch(10)
    counters_add(increments=[Increment(metric="chat.requests", tenant_id=a.tenant_id, agent_id=a.id, value=3)
                             for a in agents])
    assert statements() == before <= 10  # session, user, 3 usage queries, 2 name lookups, 3 counts


@pytest.mark.django_db
@pytest.mark.parametrize("state, agent", [("online", "online"), ("offline", "offline"), ("never_seen", "never")])
def test_agent_list_liveness_filter(admin_client_en, fleet, state, agent):
    html = admin_client_en.get(f"/admin/agents/agent/?liveness={state}", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    ids = {unquote(i) for i in re.findall(r"/admin/agents/agent/(agent\w+)/change/", html)}
    assert ids == {fleet[agent].id}
    assert f"liveness-{state}" in html
