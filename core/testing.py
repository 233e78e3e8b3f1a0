"""Test helpers shared by every app's tests (imported by tests only)."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection
from rest_framework.test import APIClient


def run_concurrently(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together by a barrier; results in index order.

    Each thread has its own database connection (real, concurrent transactions), closed at the end.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def token_client(token: str) -> APIClient:
    """An API client sending the operator token (a fresh one per thread)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client
