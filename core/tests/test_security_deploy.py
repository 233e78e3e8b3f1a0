"""Issue 12, items 14 and 17 (settings half): HTTPS behind a proxy is configured from the environment,
`manage.py check --deploy` is clean in a production-like environment, and the `.env.example` placeholder
SECRET_KEY is refused like a missing one outside DEBUG. Each runs the settings in a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_LIKE = {
    "DEBUG": "false",
    "SECRET_KEY": "Zq0m7v1cR4tY8uI2oP6aS9dF3gH5jK7lX1cV4bN8mQ2wE6rT0yU3iO5pA7sD9fG",
    "ALLOWED_HOSTS": "maimconfig.example",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
    "CSRF_TRUSTED_ORIGINS": "https://maimconfig.example",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base",
}


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in PRODUCTION_LIKE and not k.startswith(("SECURE_", "CSRF_", "SESSION_"))}
    env.update(extra)
    return env


def run(args, env):
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_check_deploy_is_clean_in_a_production_like_environment():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], clean_env(**PRODUCTION_LIKE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_https_settings_come_from_the_environment():
    code = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps(["
            "s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT]))")
    result = run(["-c", code], clean_env(**PRODUCTION_LIKE))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["HTTP_X_FORWARDED_PROTO", "https"], ["https://maimconfig.example"],
                                         True, True, 31536000, True]


def test_admin_login_behind_a_tls_proxy_passes_csrf():
    """The reported failure: an admin login behind a TLS proxy got 403 CSRF (the request looked like plain
    HTTP and the Origin was not trusted)."""
    code = """
import django, re
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
client = Client(enforce_csrf_checks=True, HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="maimconfig.example")
page = client.get("/admin/login/", secure=False)
token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
response = client.post("/admin/login/", {"csrfmiddlewaretoken": token, "username": "x", "password": "y"},
                       HTTP_ORIGIN="https://maimconfig.example", HTTP_REFERER="https://maimconfig.example/admin/login/")
print(page.status_code, response.status_code)
"""
    env = clean_env(**PRODUCTION_LIKE, DATABASE_URL="sqlite:///:memory:")
    env["ALLOWED_HOSTS"] = "maimconfig.example,testserver"
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr[-2000:]
    get_status, post_status = result.stdout.split()
    assert get_status == "200"
    assert post_status != "403", "CSRF refused the login behind the proxy"


def test_the_env_example_placeholder_secret_key_is_refused_outside_debug():
    env = clean_env(DEBUG="false", SECRET_KEY="change-me", DJANGO_SETTINGS_MODULE="maimconfig.settings.base")
    result = run(["-c", "import maimconfig.wsgi"], env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr and "change-me" in result.stderr
    env["DEBUG"] = "true"
    result = run(["-c", "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"],
                 env)
    assert result.returncode == 0 and result.stdout.strip() == "change-me"
