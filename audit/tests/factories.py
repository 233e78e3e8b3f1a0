import factory
from django.utils import timezone

from audit.models import AuditAction, AuditEvent, AuditTarget


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    occurred_at = factory.LazyFunction(timezone.now)
    actor = "operator:operator"
    action = AuditAction.TENANT_UPDATE
    target_type = AuditTarget.TENANT
    target_id = factory.Sequence(lambda n: f"tenant_{n:012x}")
    tenant_id = factory.LazyAttribute(lambda o: o.target_id)
    changes = factory.LazyFunction(lambda: {"description": ["a", "b"]})
