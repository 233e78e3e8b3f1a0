"""Test-only routes: integrity errors no service turned into its own code, as the exception handler sees
them — through DRF (`/api/v2/probe/drf/...`) and from a plain Django view (`/api/v2/probe/plain/...`)."""

from django.urls import path
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from activity.models import UsageLog
from core.ids import unique_id
from tenants.models import Tenant


def duplicate_tenant():
    for _ in range(2):  # the second row repeats the unique name key
        Tenant.objects.create(id=unique_id(Tenant, "tenant_"), tenant_name="Twin", tenant_type="personal")


def empty_action():
    UsageLog.objects.create(action="", timestamp=timezone.now())  # refused by a CHECK constraint


PROBES = {"duplicate": duplicate_tenant, "check": empty_action}


class DrfProbe(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request, probe):
        PROBES[probe]()
        return Response({})


def plain_probe(request, probe):
    PROBES[probe]()


urlpatterns = [
    path("api/v2/probe/drf/<str:probe>", DrfProbe.as_view()),
    path("api/v2/probe/plain/<str:probe>", plain_probe),
]
