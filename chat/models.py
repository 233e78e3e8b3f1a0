"""Chat: conversations with an agent and the messages of their completed turns (spec §10)."""

from django.db import models
from django.utils import timezone

from core.models import ExactCharField


class ChatConversation(models.Model):
    """One conversation of one agent (spec §10): `(agent, conversation_id)` is unique; the same
    `conversation_id` under another agent is another conversation."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="chat_conversations")
    conversation_id = ExactCharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        verbose_name = "chat conversation"
        constraints = [
            models.UniqueConstraint(fields=["agent", "conversation_id"], name="chat_conversation_unique_per_agent",
                                    violation_error_message="This conversation already exists for this agent."),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} ({self.agent_id})"


class ChatMessage(models.Model):
    """One stored message. A completed turn is two rows written together: the user's message and the
    assistant's reply, which points at it through `reply_to` (so "the last N turns" is exact even when
    turns of one conversation are stored concurrently)."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Responder(models.TextChoices):
        LLM = "llm"
        OFFLINE = "offline"

    id = ExactCharField(primary_key=True, max_length=32, editable=False)
    conversation = models.ForeignKey(ChatConversation, on_delete=models.CASCADE, related_name="messages")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    api_key_id = ExactCharField(max_length=32, null=True, blank=True,
                                  help_text="The key that made the turn (kept for audit after the key is deleted).")
    user_id = ExactCharField(max_length=128, null=True, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    reply_to = models.OneToOneField("self", on_delete=models.CASCADE, null=True, blank=True, related_name="reply")
    model = ExactCharField(max_length=200, null=True, blank=True)
    responder = models.CharField(max_length=16, choices=Responder.choices, null=True, blank=True)
    finish_reason = models.CharField(max_length=16, null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    request_id = ExactCharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "chat message"
        indexes = [
            # History pages (newest first) and "last N turns" (assistant rows, newest first).
            models.Index(fields=["conversation", "created_at", "id"], name="chat_msg_conv_created"),
            models.Index(fields=["conversation", "role", "created_at", "id"], name="chat_msg_conv_role_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=["user", "assistant"]), name="chat_message_role_valid",
                                   violation_error_message="A chat message's role is user or assistant."),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
