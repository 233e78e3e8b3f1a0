"""What the audit trail records on signals of the apps below it (`core`), which cannot import it."""

from django.dispatch import receiver

from audit.models import AuditAction, AuditTarget
from audit.services import audit_record
from core.signals import operator_token_issued


@receiver(operator_token_issued, dispatch_uid="audit.operator_token_issued")
def record_operator_token(sender, *, user, rotated: bool, created_user: bool, **kwargs) -> None:
    """One event per operator token issued; the token itself is never recorded (masked as a secret)."""
    audit_record(action=AuditAction.OPERATOR_TOKEN_ROTATE if rotated else AuditAction.OPERATOR_TOKEN_CREATE,
                 target_type=AuditTarget.OPERATOR, target_id=user.get_username(),
                 changes={"token": [None if not rotated else "********", "********"],
                          **({"user": [None, user.get_username()]} if created_user else {})})
