"""docker-compose.yml and Dockerfile.gpu must run commands that exist in this checkout, with
the same vLLM LoRA flags `loraplex up` uses."""

import importlib
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.stack import vllm_command

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
VLLM_VENV_SITE = next((ROOT / ".venv-vllm" / "lib").glob("python3*/site-packages"), None)


def check_command(argv: list[str]) -> None:
    """Assert that one command line would find what it runs."""
    if argv[:2] == ["sh", "-c"]:
        for part in argv[2].split("&&"):
            check_command(part.split())
        return
    exe, *args = argv
    if exe == "loraplex":
        result = CliRunner().invoke(cli, [*args[:2], "--help"])
        assert result.exit_code == 0, f"loraplex {' '.join(args[:2])}: {result.output}"
    elif exe == "celery":
        assert args[0] == "-A"
        assert hasattr(importlib.import_module(args[1]), "celery")
    elif exe == "uvicorn":
        module, attr = args[0].split(":")
        assert hasattr(importlib.import_module(module), attr)
    elif exe in ("python3", "python") and args[0] == "-m":
        module_path = args[1].replace(".", "/") + ".py"
        if args[1].startswith("vllm."):
            assert VLLM_VENV_SITE and (VLLM_VENV_SITE / module_path).exists(), module_path
        else:
            assert (ROOT / module_path).exists(), module_path
    elif exe in ("redis-server", "pg_isready"):
        return  # commands of the official service images
    else:
        pytest.fail(f"unknown command {argv}")


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_compose_service_commands_exist(name):
    service = COMPOSE["services"][name]
    argv = list(service.get("entrypoint", [])) + list(service.get("command", []))
    if argv:
        check_command(argv)


def test_compose_vllm_uses_the_lora_flags_of_loraplex_up():
    service = COMPOSE["services"]["vllm"]
    assert service["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    ours = [a for a in vllm_command(get_settings()) if a.startswith("--")]
    theirs = [a for a in service["command"] if a.startswith("--")]
    assert ours == theirs


def test_dockerfile_copies_existing_paths_and_runs_a_real_command():
    text = (ROOT / "Dockerfile.gpu").read_text()
    for line in re.findall(r"^COPY (.+)$", text, re.MULTILINE):
        for src in line.split()[:-1]:
            assert (ROOT / src).exists(), src
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert cmd
    check_command(yaml.safe_load(cmd.group(1)))
