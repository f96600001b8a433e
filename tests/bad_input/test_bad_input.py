"""Runs the bad-input corpus (cases.py): every case in a fresh subprocess, under a timeout and an
address-space limit, against the `mbmpo` binary (MBMPO_BINARY) and the `mbmpo` Python package
(PYTHONPATH). ctest runs it as `bad_input`; by hand:

    PYTHONPATH=build/python MBMPO_BINARY=build/apps/mbmpo .venv/bin/python -m pytest -q tests/bad_input

What each expectation means is in cases.py's docstring. On top of it, every case that touches a
run directory checks that a refused command left it byte for byte as it was (SHA-256 of every
file, before and after), and that a refused fresh start or collect created nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import cases as corpus  # noqa: E402

BINARY = str(Path(os.environ["MBMPO_BINARY"]).resolve()) if os.environ.get("MBMPO_BINARY") else ""
TIMEOUT_S = 120
ADDRESS_SPACE_BYTES = 16 << 30  # an accepted absurd size fails to allocate instead of swapping

pytestmark = [
    pytest.mark.skipif(not BINARY or not Path(BINARY).is_file(),
                       reason="MBMPO_BINARY does not name the mbmpo binary (ctest sets it)"),
    # The corpus tests what is refused, not arithmetic: once per suite run is enough.
    pytest.mark.skipif(os.environ.get("MBMPO_TEST_SECOND_PATH") == "1",
                       reason="the bad-input corpus runs on the first instruction-set path only"),
]


def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


def run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S,
                          preexec_fn=limit_address_space, env=environment)


def digest(path: Path) -> dict:
    """Every file and folder under path, with the SHA-256 of each file's bytes."""
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder")
            for p in sorted(path.rglob("*"))}


def normalised(text: str) -> str:
    return text.lower().replace("_", "-").replace(" ", "-")


def names(needle, text: str, places: dict) -> bool:
    if isinstance(needle, re.Pattern):
        return needle.search(text) is not None
    # A flag is named by its name, with or without its dashes: validate() says "models must be
    # in [1, 64]" for --models, for the config key models and for Python's models= alike.
    # "learning rate" names learning_rate as well.
    return normalised(needle.format(**places)).removeprefix("--") in normalised(text)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """The tiny two-iteration run that the checkpoint and run-directory cases copy."""
    path = tmp_path_factory.mktemp("trained") / "run"
    result = run([BINARY, *corpus.TRAINED_RUN_ARGS, "--run-dir", str(path)], path.parent)
    assert result.returncode == 0, result.stderr
    return path


def places_for(case: corpus.Case, tmp: Path, trained: Path) -> dict:
    places = {"new": str(tmp / "new-run"), "tmp": str(tmp), "file": str(tmp / "a-file"), "out": str(tmp / "out.csv"),
              "config": str(tmp / "bad.toml")}
    Path(places["file"]).write_text("not a directory\n")
    if case.config is not None:
        Path(places["config"]).write_bytes(case.config.encode("utf-8", "surrogateescape"))
    if case.uses_run:
        copy = tmp / "run-copy"
        shutil.copytree(trained, copy)
        if case.corrupt is not None:
            case.corrupt(copy)
        checkpoints = sorted(p for p in (copy / "checkpoints").glob("iter-*") if p.is_dir()) \
            if (copy / "checkpoints").is_dir() else []
        places.update(run=str(copy), final=str(copy / "policy.safetensors"),
                      latest=str(checkpoints[-1] if checkpoints else copy / "checkpoints" / "iter-000002"))
    return places


PYTHON_DRIVER = r'''
import json, sys, traceback
namespace = {"tmp": sys.argv[1], "run": sys.argv[2], "new": sys.argv[3]}
exec(compile(sys.argv[4], "prelude", "exec"), namespace)
try:
    exec(compile(sys.argv[5], "setup", "exec"), namespace)
except BaseException:
    print(json.dumps({"setup_failed": traceback.format_exc()}))
    sys.exit(0)
try:
    exec(compile(sys.argv[6], "case", "exec"), namespace)
except BaseException as e:
    print(json.dumps({"type": type(e).__name__, "message": str(e)}))
else:
    print(json.dumps({"type": None}))
'''


def run_python(case: corpus.Case, places: dict, tmp: Path) -> dict:
    result = run([sys.executable, "-c", PYTHON_DRIVER, places["tmp"], places.get("run", ""), places["new"],
                  corpus.PRELUDE, case.setup, case.code], tmp)
    assert result.returncode == 0 and result.stdout.strip(), f"the interpreter failed: {result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def parameters(case: corpus.Case):
    """A known gap is expected to fail (strictly: once fixed, it fails until it leaves the list)."""
    reason = corpus.KNOWN_GAPS.get(case.name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [parameters(c) for c in corpus.CASES])
def test_bad_input(case: corpus.Case, tmp_path: Path, request) -> None:
    trained = request.getfixturevalue("trained_run") if case.uses_run else None
    places = places_for(case, tmp_path, trained)
    run_before = digest(Path(places["run"])) if "run" in places else None

    if case.expect == "raises":
        outcome = run_python(case, places, tmp_path)
        assert "setup_failed" not in outcome, outcome.get("setup_failed")
        assert outcome["type"] is not None, "nothing was raised"
        assert outcome["type"] in case.exc, f"raised {outcome['type']}: {outcome['message']}"
        message = outcome["message"]
        assert "incompatible function arguments" not in message, f"nanobind's generic message: {message}"
        assert names(case.needle, message, places), f"the message does not name {case.needle!r}: {message}"
    else:
        args = [a.format(**places) for a in case.args]
        result = run([BINARY, *args], tmp_path)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "warning" not in line.lower()]
        warnings = [line for line in lines if "warning" in line.lower()]
        said = f"exit {result.returncode}, stderr:\n{result.stderr[-3000:]}"
        assert result.returncode >= 0, f"killed by signal {-result.returncode}: {said}"
        if case.expect == "error":
            assert result.returncode == 2, said
            assert any(names(case.needle, line, places) for line in errors), f"{case.needle!r} is not named: {said}"
        elif case.expect == "fallback":
            assert result.returncode == 0, said
            assert any(names(case.needle, line, places) for line in warnings), \
                f"no warning names {case.needle!r}: {said}"
        else:  # "ends"
            assert result.returncode == 0 or (result.returncode == 2 and any(
                names(case.needle, line, places) for line in errors)), said
        if result.returncode == 2:
            for made in ("new", "out"):
                assert not Path(places[made]).exists(), f"the refused command created {places[made]}"
    if run_before is not None and case.expect in ("error", "raises"):
        assert digest(Path(places["run"])) == run_before, "a refused command changed the run directory"


def test_python_control(tmp_path: Path, trained_run: Path) -> None:
    """The valid calls the Python cases' set-ups build on succeed, so a case fails for its own call."""
    control = corpus.Case(name="control", breaks="python", needle="", setup=corpus.PYTHON_CONTROL, code="pass",
                          expect="raises")
    copy = tmp_path / "run-copy"
    shutil.copytree(trained_run, copy)
    outcome = run_python(control, {"tmp": str(tmp_path), "run": str(copy), "new": str(tmp_path / "new-run")}, tmp_path)
    assert outcome == {"type": None}, outcome


def test_the_corpus_covers_every_class() -> None:
    counts = {b: sum(c.breaks == b for c in corpus.CASES) for b in corpus.BREAKS}
    assert len(corpus.CASES) >= 150 and all(counts.values()), counts
