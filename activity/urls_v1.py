from django.urls import re_path

from activity.views import UsageLogV1View

app_name = "activity_v1"

urlpatterns = [
    re_path(r"^usage/log/?$", UsageLogV1View.as_view(), name="usage-log"),
]
