"""The package as tools see it: every public item described, signatures that inspect reads (Jupyter's
and IDEs' tooltips), stubs precise enough that a typed example passes `mypy --strict`, errors that
name Python's keyword arguments rather than CLI flags, and __version__."""
import inspect
import os
import subprocess
import sys
import tomllib

import pytest

import mbmpo

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "typed_usage.py")


def public_items():
    return sorted(set(mbmpo.__all__) | {"eval"})


def described(doc, name):
    """A description beyond nanobind's first line, which repeats the signature."""
    lines = [line for line in (doc or "").strip().splitlines() if line.strip()]
    if lines and lines[0].lstrip().startswith((name + "(", "(self", "def ")):
        lines = lines[1:]
    return bool(lines)


def test_every_public_item_and_member_is_described():
    missing = []
    for name in public_items():
        item = getattr(mbmpo, name)
        if not described(item.__doc__, name):
            missing.append(name)
        if inspect.isclass(item):
            for attr, member in vars(item).items():
                if attr.startswith("_"):
                    continue
                doc = member.__doc__
                if isinstance(member, property) and member.fget is not None and not doc:
                    doc = member.fget.__doc__
                if not described(doc, attr):
                    missing.append(f"{name}.{attr}")
    assert not missing, f"no description: {missing}"


def test_the_functions_and_methods_have_signatures_that_inspect_reads():
    for name in public_items():
        item = getattr(mbmpo, name)
        if name not in ("Advantages", "Trajectories", "Policy"):  # made by the library, not by hand
            signature = inspect.signature(item)
            assert signature.parameters or name in ("info", "tasks", "config_fields"), name
        if inspect.isclass(item):
            for attr, member in vars(item).items():
                if callable(member) and not attr.startswith("_"):
                    inspect.signature(getattr(item, attr))  # raises where it cannot read one
    predict = inspect.signature(mbmpo.DynamicsEnsemble.predict)
    assert list(predict.parameters) == ["self", "obs", "act", "out", "model_of_row"]
    assert list(inspect.signature(mbmpo.Policy.load).parameters) == ["path", "device"]
    assert inspect.signature(mbmpo.DynamicsEnsemble).parameters["models"].default == 5
    signature = inspect.signature(mbmpo.compute_advantages)
    assert list(signature.parameters) == ["trajectories", "discount", "gae_lambda", "normalize"]
    assert signature.parameters["discount"].default == 0.99
    assert signature.return_annotation == "Advantages"
    assert inspect.signature(mbmpo.eval).parameters["episodes"].default == 10
    assert mbmpo.compute_advantages.__doc__ and mbmpo.compute_advantages.__module__ == "mbmpo"


def test_the_stubs_type_arrays_as_arrays():
    stub = open(os.path.join(os.path.dirname(mbmpo._core.__file__), "_core.pyi")).read()
    predict = next(line for line in stub.splitlines() if line.strip().startswith("def predict("))
    assert predict.rstrip(":").endswith("-> numpy.typing.NDArray[numpy.float32]"), predict


def test_a_typed_example_passes_mypy_strict_and_runs():
    pytest.importorskip("mypy")
    package = os.path.dirname(os.path.dirname(mbmpo.__file__))
    checked = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                              "--cache-dir", os.devnull, EXAMPLE], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "MYPYPATH": package})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ran = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "real return" in ran.stdout and "imagined return" in ran.stdout


def test_errors_name_keyword_arguments_not_flags(tmp_path):
    with pytest.raises(ValueError) as no_task:
        mbmpo.train(tmp_path / "a")
    assert "env=NAME" in str(no_task.value) and "--" not in str(no_task.value)
    run = tmp_path / "b"
    mbmpo.train(run, preset="smoke", env="inverted_pendulum", iterations=1, quiet=True)
    with pytest.raises(ValueError) as exists:
        mbmpo.train(run, preset="smoke", env="inverted_pendulum", quiet=True)
    assert "resume=True" in str(exists.value) and "run_dir" in str(exists.value) and "--" not in str(exists.value)
    with pytest.raises(ValueError) as adapt:
        mbmpo.eval(run / "policy.safetensors", adapt=True)
    assert str(adapt.value).startswith("adapt=True needs the dynamics models")
    with pytest.raises(ValueError, match="seeds"):
        mbmpo.train(tmp_path / "c", env="hopper", seeds="3-1")
    with pytest.raises(ValueError, match="^seed must be >= 0"):
        mbmpo.Env("hopper", seed=-1)


def test_the_cpu_preset_follows_the_task(tmp_path):
    for env, steps in (("hopper", 10), ("half_cheetah", 30), ("walker2d", 15)):
        mbmpo.train(tmp_path / env, preset="cpu", env=env, iterations=0, quiet=True)
        assert f"meta-steps={steps}\n" in (tmp_path / env / "config.toml").read_text()
    mbmpo.train(tmp_path / "given", preset="cpu", env="hopper", meta_steps=4, iterations=0, quiet=True)
    assert "meta-steps=4\n" in (tmp_path / "given" / "config.toml").read_text()


def test_version():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "pyproject.toml"), "rb") as f:
        assert mbmpo.__version__ == tomllib.load(f)["project"]["version"] == mbmpo.info()["version"]
