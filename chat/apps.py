from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Chat with agents through an OpenAI-compatible model."""

    name = "chat"

    def ready(self):
        from chat import express, signals
        from chat.aio import shutdown_db_executor
        from core.lanes import on_shutdown, on_startup

        signals.connect()
        # With Redis, the common chat request is answered on the event loop (README "Serving model").
        express.register()

        # Load the TLS trust store and the HTTP client before the first chat request, not during its deadline.
        on_startup(_warm_up)
        # The chat lane's database pool: its queued bursts finish and its connections close when the worker
        # stops (shutdown callbacks run after the in-flight requests).
        on_shutdown(shutdown_db_executor)


def _warm_up():
    from chat import upstream

    upstream.warm_up()
