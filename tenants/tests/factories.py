import factory

from core.models import casefold_name
from tenants.models import Tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    id = factory.Sequence(lambda n: f"tenant_{n:012x}")
    tenant_name = factory.Sequence(lambda n: f"Tenant {n}")
    name_key = factory.LazyAttribute(lambda o: casefold_name(o.tenant_name))
    tenant_type = Tenant.TenantType.ENTERPRISE
    status = Tenant.Status.ACTIVE
