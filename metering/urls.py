from django.urls import re_path

from metering.views import UsageCounterSummaryView

app_name = "metering"

urlpatterns = [
    re_path(r"^usage/summary/?$", UsageCounterSummaryView.as_view(), name="usage-summary"),
]
