"""Issue 15 "holds": 40 threads disabling, enabling, rotating and validating one key at once → no 5xx, no
deadlock (every thread finishes), never disabled and valid at once, and the use count stays exact."""

import threading

import pytest
from django.test import Client

from apikeys.tests.factories import ApiKeyFactory
from apikeys.usage import flush_pending, shown
from core.testing import run_concurrently, token_client

THREADS = 40
ROUNDS = 4


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_forty_threads_on_one_key(operator_token):
    key = ApiKeyFactory(permissions=["chat"])
    secrets = [key.raw_key]  # every secret the key has had; the newest is validated
    lock = threading.Lock()

    def work(index: int):
        role = index % 4
        answers = []
        client = token_client(operator_token) if role != 3 else Client()
        for _ in range(ROUNDS):
            if role == 0:
                response = client.post(f"/api/v2/api-keys/{key.pk}/disable", {}, content_type="application/json")
            elif role == 1:
                response = client.post(f"/api/v2/api-keys/{key.pk}/enable", {}, content_type="application/json")
            elif role == 2:
                response = client.post(f"/api/v2/api-keys/{key.pk}/rotate", {"grace_seconds": 3600},
                                       content_type="application/json")
                if response.status_code == 200:
                    with lock:
                        secrets.append(response.json()["data"]["api_key"])
            else:
                with lock:
                    secret = secrets[-1]
                response = client.post("/api/v2/auth/validate-api-key", {"api_key": secret},
                                       content_type="application/json")
            answers.append((role, response.status_code, response.json()))
        return answers

    answers = [answer for batch in run_concurrently(THREADS, work) for answer in batch]
    assert len(answers) == THREADS * ROUNDS  # nobody hung or died
    assert all(status < 500 for _, status, _ in answers), [a for a in answers if a[1] >= 500][:3]

    valid = 0
    for role, status, body in answers:
        if role == 3:
            data = body["data"]
            assert status == 200
            if data["valid"]:
                valid += 1
                assert data["status"] == "active"  # never disabled and valid at once
            elif body["error_code"] == "AUTH_004":
                assert data["status"] == "disabled"
            else:  # a secret rotated out twice meanwhile
                assert body["error_code"] == "AUTH_005", body
        elif role == 2:
            # Rotating a disabled key is refused (KEY_003); otherwise it works.
            assert (status, body["error_code"]) in ((200, None), (409, "KEY_003")), body
        else:
            assert status == 200 and body["data"]["status"] == ("disabled" if role == 0 else "active")

    flush_pending()
    assert shown(key.pk)[0] == valid  # each valid verdict counted exactly once

    client = token_client(operator_token)
    assert client.post(f"/api/v2/api-keys/{key.pk}/enable", {}, content_type="application/json").status_code == 200
    final = Client().post("/api/v2/auth/validate-api-key", {"api_key": secrets[-1]}, content_type="application/json")
    assert final.json()["data"]["valid"] is True
