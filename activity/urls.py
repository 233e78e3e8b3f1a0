from django.urls import re_path

from activity.views import AgentActivityView, UsageLogView, UsageSummaryView

app_name = "activity"

urlpatterns = [
    re_path(r"^agent-activity/?$", AgentActivityView.as_view(), name="agent-activity"),
    re_path(r"^usage-logs/summary/?$", UsageSummaryView.as_view(), name="usage-log-summary"),
    re_path(r"^usage-logs/?$", UsageLogView.as_view(), name="usage-log"),
]
