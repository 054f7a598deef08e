"""Imports point inward: contracts import nothing of ours, the kernel no service, no service another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "routing", "carrier", "notify")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def ours(module: str) -> bool:
    return module.split(".")[0] in {"services", "contracts", "tests", "bench"}


@pytest.mark.parametrize("path", python_files("contracts"), ids=lambda p: str(p.relative_to(ROOT)))
def test_contracts_import_nothing_of_ours_but_contracts(path):
    bad = {m for m in imported_modules(path) if ours(m) and not m.startswith("contracts")}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", python_files("services/kernel"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_kernel_imports_no_service(path):
    bad = {m for m in imported_modules(path) if m.startswith("services.") and not m.startswith("services.kernel")}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_never_imports_another_service(service):
    others = tuple(f"services.{s}" for s in SERVICES if s != service)
    for path in python_files(f"services/{service}"):
        bad = {m for m in imported_modules(path) if m.startswith(others)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from services.routing.domain import decide\nimport services.notify\n")
    assert imported_modules(module) == {"services.routing.domain", "services.notify"}


#: Libraries that do I/O: a pure domain (decide/evolve) must not even import them.
IO_LIBRARIES = frozenset(
    {
        "pymongo",
        "motor",
        "faststream",
        "confluent_kafka",
        "opentelemetry",
        "httpx",
        "requests",
        "fastapi",
        "starlette",
        "uvicorn",
        "aiosmtplib",
    }
)


def domain_modules() -> list[str]:
    """The kernel's domain building blocks and every service module built on them."""
    found = ["services.kernel.domain"]
    for service in SERVICES:
        for path in python_files(f"services/{service}"):
            if "services.kernel.domain" in imported_modules(path):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


@pytest.mark.parametrize("module", domain_modules())
def test_a_domain_module_brings_in_no_io_library(module):
    import subprocess
    import sys

    probe = (
        f"import sys, {module}; "
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(IO_LIBRARIES)!r}))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == [], f"{module} imports, directly or not: {loaded.stdout.strip()}"
