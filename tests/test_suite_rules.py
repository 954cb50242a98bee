"""Rules of the test suite itself: subprocesses run the checkout under test, and nothing
skips silently under CI=true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ci

TESTS = Path(__file__).resolve().parent

# Bare skips that follow the CI rule themselves (each fails under CI=true before it skips,
# or can only happen on a GPU machine).
OWN_CI_RULE = {
    "browser.py": "unavailable() fails under CI=true",
    "test_slurm.py": "fails under CI=true before the skip",
    "test_phantom.py": "fails under CI=true before the skip",
    "test_batches.py": "skips only where a CUDA device is present (never on CI)",
    "ci.py": "the rule",
}


def test_skip_or_fail_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no frobnicator"):
        ci.skip_or_fail("no frobnicator")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no frobnicator \(CI=true: this test may not"):
        ci.skip_or_fail("no frobnicator")
    with pytest.raises(pytest.skip.Exception, match=r"no GPU \(allowed under CI=true: never there"):
        ci.skip_or_fail("no GPU", allowed_on_ci="never there")
    with pytest.raises(pytest.fail.Exception, match="not-a-program-anywhere is not on PATH"):
        ci.require_program("not-a-program-anywhere", "install it")
    with pytest.raises(pytest.fail.Exception, match="not_a_module_anywhere is not installed"):
        ci.require_module("not_a_module_anywhere", "pip install it")


def test_no_test_skips_outside_the_ci_rule():
    """``pytest.skip``, ``importorskip`` and ``skipif`` only through tests/ci.py (or a file
    listed above with the reason it follows the rule itself)."""
    bare = re.compile(r"pytest\.skip\(|importorskip\(|mark\.skipif\(")
    offenders = [f"{p.name}:{i}" for p in sorted(TESTS.glob("*.py")) if p.name not in OWN_CI_RULE
                 and p.name != Path(__file__).name
                 for i, line in enumerate(p.read_text().splitlines(), 1) if bare.search(line)]
    assert not offenders, f"skips that would pass silently under CI=true: {offenders} (use tests/ci.py)"


def test_every_python_subprocess_of_the_suite_uses_checkout_env():
    """A test file that starts ``sys.executable`` takes its environment from
    ``tests/checkout.py``'s ``checkout_env`` (exempt: subprocesses that never import prunecxr)."""
    exempt = {"test_book.py": "runs git and nbstripout's filter, which never import prunecxr"}
    offenders = [p.name for p in sorted(TESTS.glob("test_*.py"))
                 if "sys.executable" in (text := p.read_text()) and "subprocess" in text
                 and "checkout_env" not in text and p.name not in exempt]
    assert not offenders, f"{offenders} start Python without tests/checkout.py's checkout_env"


def _computes_in_the_shared_home(text: str) -> bool:
    """Whether a module asks the pipeline for results without naming a results root (so in
    the session's home, where the shared smoke results live)."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if (name in ("ensure_results", "ensure_ladder", "ensure_populations")
                    and len(node.args) < 2
                    and not any(k.arg == "results_root" for k in node.keywords)):
                return True
    return False


def test_one_thread_modules_do_not_touch_the_shared_smoke_results():
    """A module with ``TORCH_THREADS`` (tests/conftest.py) trains on one thread; the session's
    smoke results must not be first computed there, since other modules compare their own runs
    with them bit for bit on torch's default thread count."""
    shared = re.compile(r"\b(smoke_results|smoke_store|smoke_book)\b")
    offenders = [p.name for p in sorted(TESTS.glob("test_*.py"))
                 if re.search(r"^TORCH_THREADS\s*=", text := p.read_text(), re.M)
                 and (shared.search(text) or _computes_in_the_shared_home(text))]
    assert not offenders, f"{offenders} set TORCH_THREADS and use the shared smoke results"


def test_the_shared_home_rule_sees_a_call_without_a_results_root():
    assert _computes_in_the_shared_home("ensure_results(load_config('smoke'))")
    assert _computes_in_the_shared_home("pipeline.ensure_ladder(config, progress=False)")
    assert not _computes_in_the_shared_home("ensure_results(config, tmp_path / 'r')")
    assert not _computes_in_the_shared_home("p.ensure_ladder(c, results_root=root)")
