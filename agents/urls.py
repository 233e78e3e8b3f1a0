from django.urls import re_path

from agents.views import (
    AgentConfigRollbackView,
    AgentConfigVersionDetailView,
    AgentConfigVersionListView,
    AgentConfigView,
    AgentViewSet,
)
from core.routers import ApiRouter

app_name = "agents"

router = ApiRouter()
router.register("agents", AgentViewSet, basename="agent")

urlpatterns = [
    re_path(r"^agents/(?P<agent_id>[^/]+)/config/?$", AgentConfigView.as_view(), name="agent-config"),
    re_path(r"^agents/(?P<agent_id>[^/]+)/config/versions/?$", AgentConfigVersionListView.as_view(),
            name="agent-config-versions"),
    re_path(r"^agents/(?P<agent_id>[^/]+)/config/versions/(?P<number>[0-9]{1,10})/?$",
            AgentConfigVersionDetailView.as_view(), name="agent-config-version"),
    re_path(r"^agents/(?P<agent_id>[^/]+)/config/rollback/?$", AgentConfigRollbackView.as_view(),
            name="agent-config-rollback"),
    *router.urls,
]
