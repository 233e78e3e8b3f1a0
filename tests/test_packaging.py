"""The Dockerfile and compose file are right by construction (no Docker engine runs here): every path
the image copies exists, its command is the entry point `make run` uses, and the build steps work."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_every_copied_path_exists():
    sources = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:  # `--from=builder` copies from the build stage
            parts = line.split()[1:-1]
            sources += [p for p in parts if not p.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_every_app_and_project_package_is_copied():
    from django.conf import settings

    local = [app for app in settings.INSTALLED_APPS if (ROOT / app).is_dir()]
    for package in ["maimconfig", *local]:
        assert re.search(rf"^COPY {package} /app/{package}$", DOCKERFILE, re.M), package


def test_base_image_user_and_healthcheck():
    assert DOCKERFILE.startswith("#") and "FROM python:3.11-slim" in DOCKERFILE
    assert "default-libmysqlclient-dev" in DOCKERFILE and "pkg-config" in DOCKERFILE
    assert re.search(r"^USER maimconfig$", DOCKERFILE, re.M)
    assert "HEALTHCHECK" in DOCKERFILE and "/health" in DOCKERFILE


def _stages() -> dict[str, str]:
    """The Dockerfile's stages by name (`FROM … AS name`), each with its own lines."""
    instructions = "\n".join(line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#"))
    parts = re.split(r"^FROM ", instructions, flags=re.M)[1:]
    return {part.split("\n", 1)[0].split(" AS ")[-1].strip(): part for part in parts}


def test_multi_stage_build_keeps_compiler_and_test_tools_out_of_the_runtime_image():
    """Issue 12, item 15: a builder with the compiler, a slim runtime without it or any test tool."""
    stages = _stages()
    assert list(stages) == ["builder", "runtime"], stages.keys()
    builder, runtime = stages["builder"], stages["runtime"]
    assert "build-essential" in builder and "pip install -r /tmp/requirements.txt" in builder
    for forbidden in ("build-essential", "gcc", "pkg-config", "-dev ", "-dev\n", "requirements-test", "pip install"):
        assert forbidden not in runtime, f"the runtime stage mentions {forbidden!r}"
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime and "libmariadb3" in runtime
    assert "requirements-test" not in builder
    runtime_requirements = (ROOT / "requirements.txt").read_text().lower()
    for tool in ("pytest", "factory-boy", "factory_boy", "playwright", "ruff", "schemathesis", "polib"):
        assert tool not in runtime_requirements, f"{tool} is a test tool but in requirements.txt"
    assert "-r requirements.txt" in (ROOT / "requirements-test.txt").read_text()


def test_first_start_prints_the_first_operator_once(tmp_path):
    """The image's command, step by step, on a scratch database: migrate, then the first operator (printed
    once, like `make run`), then nothing on the next start."""
    command = re.search(r'^CMD \["sh", "-c", "(.*)"\]$', DOCKERFILE, re.M).group(1)
    steps = [step.strip() for step in command.split("&&")]
    assert steps[0].startswith("python manage.py migrate")
    assert steps[1] == "python manage.py ensure_first_operator"
    assert steps[2] == "exec gunicorn -c gunicorn.conf.py"
    env = {"SECRET_KEY": "packaging-test-key", "PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base", "MAIMCONFIG_ENV_FILE": ""}
    outputs = []
    for _ in range(2):
        for step in steps[:2]:
            args = step.split()[1:]
            result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env)
            assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert "API token" in outputs[0] and "password" in outputs[0]
    assert outputs[1].strip() == ""


def test_command_is_the_make_run_entry_point():
    """Both run `gunicorn -c gunicorn.conf.py` with no application argument: the config names the ASGI lane
    dispatcher (README "Serving model"); an explicit `maimconfig.wsgi:application` would override it."""
    makefile = (ROOT / "Makefile").read_text()
    entry = re.compile(r"gunicorn -c gunicorn\.conf\.py\s*(\"\]|$)", re.M)
    assert entry.search(makefile)
    assert entry.search(DOCKERFILE)


def test_requirements_are_pinned():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert "==" in line, f"unpinned requirement: {line}"


def test_collectstatic_step_runs(tmp_path):
    """The image's build step, run here against a scratch STATIC_ROOT."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='maimconfig.settings.base';"
        f"from django.conf import settings; django.setup(); settings.STATIC_ROOT={str(tmp_path)!r};"
        "from django.core.management import call_command; call_command('collectstatic', '--noinput', verbosity=0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={"SECRET_KEY": "build-only", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "drf_spectacular_sidecar" / "swagger-ui-dist" / "swagger-ui-bundle.js").exists()


def test_compose_runs_mysql_redis_and_the_service():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "image: mysql:8" in compose and "image: redis" in compose
    assert "DATABASE_URL: mysql://" in compose and "CACHE_URL: redis://" in compose
