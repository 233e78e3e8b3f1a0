from django.urls import re_path

from agents.views import AgentConfigView, AgentViewSet
from core.routers import ApiRouter

app_name = "agents"

router = ApiRouter()
router.register("agents", AgentViewSet, basename="agent")

urlpatterns = [
    re_path(r"^agents/(?P<agent_id>[^/]+)/config/?$", AgentConfigView.as_view(), name="agent-config"),
    *router.urls,
]
