"""Dockerfile structure (no Docker engine here): stages, non-root runtime, healthcheck, entrypoint, build context."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess

import pytest


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


@pytest.fixture(scope="module")
def stages(repo_root):
    """Instructions per stage, keyed by stage name; the last stage is the runtime image."""
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, args in instructions((repo_root / "Dockerfile").read_text()):
        if keyword == "FROM":
            current = args.split(" AS ")[-1].strip() if " AS " in args else f"stage{len(result)}"
            result[current] = []
        elif current is not None:
            result[current].append((keyword, args))
    return result


def runtime(stages):
    return list(stages.values())[-1]


def args_of(stage, keyword):
    return [args for kw, args in stage if kw == keyword]


def test_multi_stage_with_slim_base(repo_root, stages):
    assert list(stages) == ["build", "runtime"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", (repo_root / "Dockerfile").read_text(), re.M)


def test_build_tools_only_in_build_stage(stages):
    build_runs = " ".join(args_of(stages["build"], "RUN"))
    assert "build-essential" in build_runs
    runtime_text = " ".join(args for _, args in runtime(stages))
    assert "apt-get install" not in runtime_text
    assert "build-essential" not in runtime_text
    assert args_of(runtime(stages), "COPY")[:2] == ["--from=build /opt/venv /opt/venv", "--from=build /app /app"]


def test_runtime_runs_as_non_root_user_created_in_image(stages):
    (user,) = args_of(runtime(stages), "USER")
    uid, _, gid = user.partition(":")
    assert int(uid) != 0 and int(gid) != 0
    assert f"--uid {uid}" in " ".join(args_of(runtime(stages), "RUN"))


def test_exposes_8080_and_checks_health(stages):
    assert args_of(runtime(stages), "EXPOSE") == ["8080"]
    (healthcheck,) = args_of(runtime(stages), "HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "/health" in command[2]
    compile(command[2], "<healthcheck>", "exec")


def test_gunicorn_entrypoint_uses_project_config(repo_root, stages):
    (entrypoint,) = args_of(runtime(stages), "ENTRYPOINT")
    (cmd,) = args_of(runtime(stages), "CMD")
    assert json.loads(entrypoint) == ["gunicorn", "-c", "config/gunicorn.conf.py"]
    assert json.loads(cmd) == ["wsgi:app"]
    assert (repo_root / "config" / "gunicorn.conf.py").is_file()
    assert (repo_root / "wsgi.py").is_file()


def test_multiproc_dir_is_created_for_the_runtime_user(stages):
    env = " ".join(args_of(runtime(stages), "ENV"))
    assert "PROMETHEUS_MULTIPROC_DIR=/run/stateset-sequencer" in env
    assert "-o sequencer -g sequencer" in " ".join(args_of(runtime(stages), "RUN"))


def dockerignore_patterns(repo_root) -> list[str]:
    lines = (repo_root / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.lstrip("*/")) or path.startswith(p + "/")
               for p in patterns)


def test_every_copied_source_exists_and_is_in_the_build_context(repo_root, stages):
    patterns = dockerignore_patterns(repo_root)
    sources = []
    for args in args_of(stages["build"], "COPY"):
        *srcs, _dest = shlex.split(args)
        sources += srcs
    assert {"requirements.txt", "app", "alembic", "config", "wsgi.py", "alembic.ini", "pyproject.toml"} <= set(sources)
    for source in sources:
        assert (repo_root / source).exists(), source
        assert not ignored(source, patterns), f"{source} is excluded by .dockerignore"
    for excluded in (".venv", ".git", "tests", "var", "contracts/node_modules"):
        assert ignored(excluded, patterns), excluded


def test_image_installs_the_runtime_requirements_without_test_tools(repo_root, stages):
    (install_run,) = [args for args in args_of(stages["build"], "RUN") if "requirements" in args and "pip" in args]
    assert "-r requirements.txt" in install_run and "requirements-dev" not in install_run
    runtime = {line.split("==")[0].lower() for line in (repo_root / "requirements.txt").read_text().splitlines()
               if "==" in line}
    assert {"gunicorn", "flask", "sqlalchemy", "psycopg2-binary", "alembic", "prometheus_client", "web3"} <= runtime
    assert not runtime & {"pytest", "hypothesis", "eth-tester", "py-evm", "kubernetes-validate",
                          "openapi-spec-validator"}
