"""Test-only routes: domain errors raised outside DRF (plain Django views), as middleware would see them."""

from django.urls import path

from core.errors import ErrorCode
from core.exceptions import ApplicationError


def refused_with_overrides(request):
    raise ApplicationError(ErrorCode.ACTIVITY_002, "Tenant 'tenant_abc' is not active.", status=409,
                           tenant_id="tenant_abc", headers={"X-Probe": "1"})


def refused_401(request):
    raise ApplicationError(ErrorCode.NOT_AUTHENTICATED, tenant_id="tenant_abc")


urlpatterns = [
    path("api/v2/probe/refused", refused_with_overrides),
    path("api/v2/probe/unauthenticated", refused_401),
]
