"""Issue 16 items 7 and 8: the suite never reads a settings file (a developer's `.env`), and `testserver`
is not a production default host (Django's test runner adds it itself)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent

_PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s;"
    "print(json.dumps({'auth_mode': s.MAIMCONFIG_AUTH_MODE, 'hosts': s.ALLOWED_HOSTS,"
    " 'legacy': s.MAIMCONFIG_LEGACY_ERROR_STATUS}))"
)


def _settings_of(module: str, **env) -> dict:
    """The settings a fresh process gets from `module`, with a clean environment plus `env`."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MAIMCONFIG_") and k not in ("ALLOWED_HOSTS", "DEBUG")}
    clean.update({"DJANGO_SETTINGS_MODULE": module, "SECRET_KEY": "isolation-test", **env})
    result = subprocess.run([sys.executable, "-c", _PRINT_SETTINGS], cwd=ROOT, env=clean, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_settings_file_is_read_by_the_service(tmp_path):
    """The control: the same file does reach the production settings (so the next test can fail)."""
    env_file = tmp_path / "developer.env"
    env_file.write_text("MAIMCONFIG_AUTH_MODE=open\nMAIMCONFIG_LEGACY_ERROR_STATUS=true\n")
    seen = _settings_of("maimconfig.settings.base", MAIMCONFIG_ENV_FILE=str(env_file))
    assert (seen["auth_mode"], seen["legacy"]) == ("open", True)


def test_the_test_settings_ignore_a_developers_env_file(tmp_path):
    """A `.env` with MAIMCONFIG_AUTH_MODE=open (what a developer may have) does not leak into the tests."""
    env_file = tmp_path / "developer.env"
    env_file.write_text("MAIMCONFIG_AUTH_MODE=open\nMAIMCONFIG_LEGACY_ERROR_STATUS=true\n")
    seen = _settings_of("maimconfig.settings.test", MAIMCONFIG_ENV_FILE=str(env_file))
    assert (seen["auth_mode"], seen["legacy"]) == ("operator", False)


def test_this_suite_runs_without_a_settings_file():
    assert os.environ.get("MAIMCONFIG_ENV_FILE") == ""
    assert settings.MAIMCONFIG_AUTH_MODE == "operator"


def test_testserver_is_not_a_production_default_host():
    assert _settings_of("maimconfig.settings.base")["hosts"] == ["127.0.0.1", "localhost", "[::1]"]
    # Django's test runner adds it for the test client.
    assert "testserver" in settings.ALLOWED_HOSTS
