from django.urls import re_path

from audit.views import AuditEventListView

app_name = "audit"

urlpatterns = [
    re_path(r"^audit-events/?$", AuditEventListView.as_view(), name="audit-event-list"),
]
