"""pytest hooks: the BLAS kernels left alone, the PyTorch reference policy under CI, the report."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from tests.helpers import IN_CI, TORCH_ERRORS

# Under CI the property tests draw the same examples every run: a new counterexample found by
# chance should surface in a developer's run, not fail an unrelated submission's CI.
settings.register_profile("ci", derandomize=True)
if IN_CI:
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    """Before glassnet is imported: no stored BLAS choice applied, no tuning by the commands.

    The tests of ``glassnet.blas`` ask for it explicitly; the rest run on the kernels OpenBLAS
    detects, and never write to the user's cache.
    """
    os.environ["GLASSNET_BLAS"] = "off"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Under CI=true a skipped PyTorch reference, MPI or compiled-loops test is a failure."""
    outcome = yield
    report = outcome.get_result()
    required = [m for m in ("torch", "mpi", "compiled") if item.get_closest_marker(m) is not None]
    if IN_CI and report.skipped and required:
        report.outcome = "failed"
        report.longrepr = f"{required[0]} test skipped under CI=true: {report.longrepr}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TORCH_ERRORS:
        return
    terminalreporter.section("max relative error vs PyTorch")
    for op in sorted(TORCH_ERRORS):
        cells = ", ".join(
            f"{dt}: {err:.2e} over {int(n)} cases"
            for dt, (err, n) in sorted(TORCH_ERRORS[op].items())
        )
        terminalreporter.write_line(f"{op:<22} {cells}")


#: Imported by the reference tests after their torch check; not a module to collect alone.
collect_ignore = ["torch_ref.py"]
