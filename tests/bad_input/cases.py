"""The bad-input corpus (issue 26, section 5): one record per bad input, and what must happen.

Every case is a `Case`. `breaks` says which input is bad:

- flag:       a command-line argument (CLI11 parsing, ranges, choices, sizes),
- config:     the TOML file of `mbmpo train --config FILE`,
- run_dir:    the run directory itself (a file, missing, an existing run, a broken config.toml),
- checkpoint: a file of checkpoints/iter-N/ or checkpoints/latest, or the final policy.safetensors,
- python:     an argument of the Python API (module `mbmpo`).

CLI cases give `args` (the argument list after the binary) with these placeholders, which the
runner (test_bad_input.py) fills in:

- {new}     a fresh run directory path that does not exist (a refused start must not create it),
- {run}     a copy of the session's trained tiny run, after `corrupt(run_path)` was applied,
- {latest}  {run}/checkpoints/ + the newest iter-N directory,
- {final}   {run}/policy.safetensors,
- {config}  a file holding `config` (the case's TOML text), named bad.toml,
- {file}    a regular file (a few bytes of text),
- {out}     an output path that does not exist (a refused command must not create it),
- {tmp}     the case's scratch directory.

`expect` is what must happen:

- "error":    exit code 2, and a line of the error (a line with "error" in it, or stderr's last
              line) contains `needle`,
- "fallback": exit code 0, and a stderr line with "warning" in it contains `needle`,
- "ends":     exit code 0, or exit code 2 with `needle` in the error (never a hang or a crash),
- "raises":   (Python) `code` raises one of `exc` and its message contains `needle`.

`needle` is matched case-insensitively with '_' and '-' taken as the same character (the
config keys are the flags' names; Python keywords use '_'). A `re.Pattern` needle is searched
as a regular expression (used for "FILE:LINE" of TOML syntax errors). A nanobind "incompatible
function arguments" message does not count as naming an argument: its signature list names them
all.

Every subprocess runs under a timeout (a timeout fails the case) and an address-space limit, so
that an accepted absurd size fails with an allocation error instead of exhausting the machine.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import struct
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

Needle = Union[str, "re.Pattern[str]"]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    breaks: str
    needle: Needle
    args: Optional[Tuple[str, ...]] = None            # CLI
    config: Optional[str] = None                      # TOML text written to {config}
    corrupt: Optional[Callable[[Path], None]] = None  # applied to the copy of the trained run
    setup: str = ""                                   # Python: statements that must succeed
    code: Optional[str] = None                        # Python: the call that must raise
    expect: str = "error"
    exc: Tuple[str, ...] = ("TypeError", "ValueError")

    @property
    def uses_run(self) -> bool:
        text = " ".join(self.args or ()) + self.setup + (self.code or "")
        return self.corrupt is not None or bool(re.search(r"\{run\}|\{latest\}|\{final\}|\brun\b", text))


BREAKS = ("flag", "config", "run_dir", "checkpoint", "python")

# tests/apps/run_files.hpp: kTinySettings (a CI-sized InvertedPendulum run, well under a second).
TINY = ("--env", "inverted_pendulum", "--random-steps", "500", "--horizon", "100", "--eval-episodes", "3",
        "--models", "3", "--model-hidden", "32,32", "--model-max-epochs", "20", "--meta-batch", "6",
        "--rollouts-per-task", "10", "--imagined-horizon", "30", "--meta-steps", "4", "--inner-lr", "0.05",
        "--quiet")
# The run every checkpoint and run-directory case copies: two iterations, so two checkpoints.
TRAINED_RUN_ARGS = ("train", *TINY, "--iterations", "2", "--device", "cpu")

# A fresh tiny run of one iteration: if a bad flag after these is (wrongly) accepted, the run ends
# in well under a second and the case fails on its exit code, not on a timeout.
TRAIN = ("train", *TINY, "--iterations", "1", "--device", "cpu", "--run-dir", "{new}")
TRAIN_NO_ENV = tuple(a for i, a in enumerate(TRAIN) if a != "--env" and (i == 0 or TRAIN[i - 1] != "--env"))
EVAL = ("eval", "--run-dir", "{run}", "--episodes", "1", "--device", "cpu")
EVAL_ADAPT = (*EVAL, "--adapt")
RESUME = ("train", "--resume", "--run-dir", "{run}", "--iterations", "3", "--device", "cpu", "--quiet")
COLLECT = ("collect", "--env", "inverted_pendulum", "--episodes", "1", "--horizon", "10", "--out", "{out}")
BENCH = ("bench", "--suite", "env", "--scale", "small", "--device", "cpu")

INT32_MAX = "2147483647"
U64_OVER = "99999999999999999999"  # > 2**64

CASES: list[Case] = []


def add(case: Case) -> None:
    CASES.append(case)


def flag(name: str, extra: Tuple[str, ...], needle: Needle, base: Tuple[str, ...] = TRAIN, expect="error") -> None:
    add(Case(name=name, breaks="flag", args=(*base, *extra), needle=needle, expect=expect))


# --------------------------------------------------------------------------------------------
# 1. Parsing and ranges of the flags
# --------------------------------------------------------------------------------------------

# Integers: empty, negative where a count, overflowing, fractions, hex, exponents, words.
for f in ("iterations", "models", "meta-batch", "horizon", "model-batch", "imagined-horizon", "seed"):
    flag(f"train --{f} empty", (f"--{f}", ""), f"--{f}")
for f, v in (("iterations", "1.5"), ("iterations", "0x10"), ("iterations", "1e2"), ("iterations", "abc"),
             ("iterations", "3abc"), ("iterations", "-1"), ("iterations", U64_OVER), ("iterations", "2147483648"),
             ("seed", "-1"), ("seed", U64_OVER), ("seed", "1.5"), ("seed", "0x10"), ("seed", "1e3"),
             ("models", "3.0"), ("models", "0x3"), ("models", "-3"), ("models", "0"),
             ("meta-batch", "0"), ("meta-batch", "-1"), ("rollouts-per-task", "0"), ("imagined-horizon", "0"),
             ("imagined-horizon", "-1"), ("horizon", "0"), ("horizon", "-1"), ("horizon", "2147483648"),
             ("random-steps", "-1"), ("eval-episodes", "-1"), ("threads", "0"), ("threads", "-1"),
             ("cpu-threads", "-1"), ("model-batch", "0"), ("model-batch", "-1"), ("model-max-epochs", "-1"),
             ("meta-steps", "-1"), ("cg-iterations", "0"), ("cg-iterations", "-1"), ("max-backtracks", "-1"),
             ("dataset-capacity", "0"), ("dataset-capacity", "-1"), ("dataset-capacity", "1")):
    flag(f"train --{f} {v}", (f"--{f}", v), f"--{f}")

# --seeds: must end quickly, with a clear error or a quick success.
flag("train --seeds u64max-u64max ends", ("--seeds", "18446744073709551615-18446744073709551615"), "--seeds",
     expect="ends")
flag("train --seed u64max ends", ("--seed", "18446744073709551615"), "--seed", expect="ends")
for v in ("", "0-18446744073709551615", "5-3", "0,0", "a", "0-64", "1,", ",1", "0--1", "-1", "0-" + U64_OVER):
    flag(f"train --seeds {v!r}", ("--seeds", v), "--seeds")

# Lists of sizes.
for f in ("model-hidden", "policy-hidden"):
    for v in ("64,", ",64", "64,,32", "64,abc", "0", "-1", "", "64;32", "64 32", "1e3", "0x40", "64,-1",
              "99999999999"):
        flag(f"train --{f} {v!r}", (f"--{f}", v), f"--{f}")

# Booleans given other values.
for f, v in (("tf32", ""), ("tf32", "2"), ("first-order", "2"), ("first-order", ""), ("model-early-stopping", "maybe"),
             ("cuda-graph", "-1"), ("tf32", "truee")):
    flag(f"train --{f} {v!r}", (f"--{f}", v), f"--{f}")

# Floats: non-finite, out of their range, absurd.
for f, v in (("inner-lr", "nan"), ("inner-lr", "inf"), ("inner-lr", "-inf"), ("inner-lr", "1e30"),
             ("model-lr", "nan"), ("model-lr", "1e30"), ("model-lr", "0"), ("model-lr", "-1"),
             ("discount", "2"), ("discount", "-0.5"), ("discount", "nan"), ("gae-lambda", "2"), ("gae-lambda", "-1"),
             ("max-kl", "0"), ("max-kl", "-1"), ("max-kl", "inf"), ("cg-damping", "-1"), ("cg-damping", "nan"),
             ("backtrack-ratio", "0"), ("backtrack-ratio", "1.5"), ("fisher-subsample", "0"),
             ("fisher-subsample", "1.5"), ("init-std", "0"), ("init-std", "-1"), ("init-std", "inf"),
             ("model-validation", "1.5"), ("model-validation", "-0.1"), ("model-validation", "nan"),
             ("inner-lr", ""), ("max-kl", "abc"), ("discount", "0x1p-1")):
    flag(f"train --{f} {v!r}", (f"--{f}", v), f"--{f}")

# Sizes that would exhaust memory: refused before anything is allocated or written.
for f in ("models", "meta-batch", "imagined-horizon", "dataset-capacity", "model-hidden", "policy-hidden",
          "rollouts-per-task", "threads"):
    flag(f"train --{f} {INT32_MAX}", (f"--{f}", INT32_MAX), f"--{f}")
flag("train --models 65", ("--models", "65"), "--models")
# Refused by the memory estimate, which names the part too large: "models x hidden sizes".
flag("train --model-hidden 1048576,1048576", ("--model-hidden", "1048576,1048576"), "hidden sizes")

# Choices, unknown flags and commands.
for f, v in (("env", "nope"), ("env", ""), ("device", "gpu0"), ("device", ""), ("model-activation", "gelu"),
             ("preset", "nope")):
    flag(f"train --{f} {v!r}", (f"--{f}", v), v if v else f"--{f}")
flag("train without --env", (), "--env", base=TRAIN_NO_ENV)
flag("train --bogus", ("--bogus",), "--bogus")
flag("train --iteration (a typo)", ("--iteration", "3"), "--iteration")
flag("train --episodes (eval's flag)", ("--episodes", "3"), "--episodes")
flag("train a positional argument", ("extra",), "extra")
flag("train --models without a value", ("--models",), "--models")
flag("train --run-dir twice", ("--run-dir", "{new}2"), "--run-dir", expect="ends")
for cmd, needle in ((("trian",), "trian"), (("TRAIN",), "TRAIN"), (("",), "command"), (("--bogus",), "--bogus"),
                    (("info", "--bogus"), "--bogus"), (("info", "extra"), "extra"), (("envs", "--bogus"), "--bogus"),
                    (("envs", "extra"), "extra"), (("train", "--config"), "--config")):
    flag("mbmpo " + " ".join(repr(c) if not c else c for c in cmd), (), needle, base=cmd)

# eval's flags (on a copy of the trained run).
for f, v in (("episodes", "0"), ("episodes", "-1"), ("episodes", ""), ("episodes", "abc"), ("episodes", "2147483648"),
             ("episodes", U64_OVER), ("episodes", "1.5"), ("threads", "0"), ("threads", "-1"), ("threads", INT32_MAX),
             ("seed", "-1"), ("seed", "abc"), ("seed", U64_OVER), ("device", "gpu0"), ("device", "")):
    flag(f"eval --{f} {v!r}", (f"--{f}", v), f"--{f}" if f != "device" or not v else v, base=EVAL)
flag("eval --episodes 1000000000", ("--episodes", "1000000000"), "--episodes", base=EVAL)
flag("eval without --run-dir or --checkpoint", (), "--run-dir", base=("eval", "--episodes", "1"))
flag("eval --run-dir and --checkpoint", ("--checkpoint", "{final}"), "--checkpoint", base=EVAL)
flag("eval --bogus", ("--bogus",), "--bogus", base=EVAL)
flag("eval --models (train's flag)", ("--models", "3"), "--models", base=EVAL)
flag("eval --checkpoint empty", (), "--checkpoint", base=("eval", "--checkpoint", "", "--episodes", "1"))
flag("eval --run-dir empty", (), "--run-dir", base=("eval", "--run-dir", "", "--episodes", "1"))

# collect's flags: a refused collect writes no output file.
def without(base: Tuple[str, ...], name: str) -> Tuple[str, ...]:
    """base less the flag `name` and its value, so that a case can give its own."""
    i = base.index(name)
    return base[:i] + base[i + 2:]


for f, v in (("episodes", "0"), ("episodes", "-1"), ("episodes", ""), ("episodes", "100000001"), ("horizon", "0"),
             ("horizon", "abc"), ("threads", "0"), ("seed", "-1"), ("env", "nope"), ("env", "")):
    flag(f"collect --{f} {v!r}", (f"--{f}", v), (v or "task") if f == "env" else f"--{f}",
         base=without(COLLECT, f"--{f}") if f"--{f}" in COLLECT else COLLECT)
flag("collect --out empty", ("--out", ""), "--out", base=without(COLLECT, "--out"))
flag("collect --out in a missing directory", ("--out", "{tmp}/no/such/dir/x.csv"), "no/such/dir",
     base=without(COLLECT, "--out"))
flag("collect --out is a directory", ("--out", "{tmp}"), "--out", base=without(COLLECT, "--out"))
flag("collect without --env", (), "--env", base=("collect", "--out", "{out}"))

# bench's flags.
for f, v in (("suite", "nope"), ("suite", ""), ("scale", "huge"), ("scale", ""), ("device", "gpu0"), ("json", "")):
    flag(f"bench --{f} {v!r}", (f"--{f}", v), v if v else f"--{f}", base=BENCH)
flag("bench --json in a missing directory", ("--json", "{tmp}/no/such/dir/b.json"), "no/such/dir", base=BENCH)
flag("bench --json is a directory", ("--json", "{tmp}"), "--json", base=BENCH)
flag("bench --bogus", ("--bogus",), "--bogus", base=BENCH)

# --------------------------------------------------------------------------------------------
# 2. The config file (TOML)
# --------------------------------------------------------------------------------------------
# The base file holds the tiny settings (so that a wrongly accepted file still ends in a second);
# a case replaces keys in it (None removes one) or adds raw lines right after [train] (line 2).
BASE_CONFIG = {"env": '"inverted_pendulum"', "iterations": "1", "device": '"cpu"', "random-steps": "500",
               "horizon": "100", "eval-episodes": "3", "models": "3", "model-hidden": "[32, 32]",
               "model-max-epochs": "20", "meta-batch": "6", "rollouts-per-task": "10", "imagined-horizon": "30",
               "meta-steps": "4", "inner-lr": "0.05"}
CONFIG_CMD = ("train", "--config", "{config}", "--run-dir", "{new}", "--quiet")


def config_text(replace: Optional[dict] = None, lines: str = "", before: str = "") -> str:
    values = dict(BASE_CONFIG)
    for key, value in (replace or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    body = "".join(f"{k} = {v}\n" for k, v in values.items())
    return f"{before}[train]\n{lines}{body}"


def at_line(n: int) -> "re.Pattern[str]":
    """The error names bad.toml and line n ("bad.toml:2:10", "bad.toml, line 2", ...)."""
    return re.compile(rf"bad\.toml\D{{1,10}}{n}\b", re.IGNORECASE)


def config(name: str, needle: Needle, replace: Optional[dict] = None, lines: str = "", before: str = "",
           text: Optional[str] = None, args: Tuple[str, ...] = CONFIG_CMD) -> None:
    add(Case(name=name, breaks="config", args=args, needle=needle,
             config=text if text is not None else config_text(replace, lines, before)))


config("config syntax error 'models = = 3'", at_line(2), lines="models = = 3\n", replace={"models": None})
config("config unterminated string", at_line(2), lines='env = "inverted_pendulum\n', replace={"env": None})
config("config empty value 'models ='", at_line(2), lines="models =\n", replace={"models": None})
config("config key without a value or '='", at_line(2), lines="models\n", replace={"models": None})
config("config duplicate key models", "models", lines="models = 4\n")
config("config duplicate [train] section", re.compile(r"bad\.toml|\[train\]|train", re.I),
       text="[train]\nseed = 1\n" + config_text())
config("config the same key as model-hidden and model_hidden", "model", lines="model_hidden = [64]\n")
config("config array for a scalar 'models = [3, 4]'", "models", {"models": "[3, 4]"})
config("config string for an integer 'models = \"3\"'", "models", {"models": '"3"'})
config("config empty string for an integer", "models", {"models": '""'})
config("config float for an integer 'iterations = 1.5'", "iterations", {"iterations": "1.5"})
config("config float 3.0 for an integer", "models", {"models": "3.0"})
config("config boolean for an integer", "models", {"models": "true"})
config("config inline table for an integer", "models", {"models": "{ value = 3 }"})
config("config date for an integer", "seed", {"seed": "1979-05-27"})
config("config integer for a boolean 'tf32 = 1'", "tf32", {"tf32": "1"})
config("config string for a boolean 'tf32 = \"true\"'", "tf32", {"tf32": '"true"'})
config("config string for a float", "inner-lr", {"inner-lr": '"0.1"'})
config("config nan for inner-lr", "inner-lr", {"inner-lr": "nan"})
config("config inf for inner-lr", "inner-lr", {"inner-lr": "inf"})
config("config discount = 2.0", "discount", {"discount": "2.0"})
config("config models = 0", "models", {"models": "0"})
config("config models = 65", "models", {"models": "65"})
config("config models = 2147483647", "models", {"models": INT32_MAX})
config("config models overflowing 64 bits", re.compile(r"models|bad\.toml\D{1,10}\d", re.I), {"models": U64_OVER})
config("config iterations = -1", "iterations", {"iterations": "-1"})
config("config seed = -1", "seed", {"seed": "-1"})
config("config dataset-capacity = 1", "dataset-capacity", {"dataset-capacity": "1"})
config("config threads = 0", "threads", {"threads": "0"})
config("config model-hidden with a string element", "model-hidden", {"model-hidden": '[64, "a"]'})
config("config model-hidden with a negative element", "model-hidden", {"model-hidden": "[64, -1]"})
config("config model-hidden with a zero element", "model-hidden", {"model-hidden": "[64, 0]"})
config("config model-hidden with a float element", "model-hidden", {"model-hidden": "[64, 1.5]"})
config("config model-hidden empty array", "model-hidden", {"model-hidden": "[]"})
config("config model-hidden boolean", "model-hidden", {"model-hidden": "true"})
config("config model-hidden nested array", "model-hidden", {"model-hidden": "[[64]]"})
config("config model-hidden [2147483647]", "model-hidden", {"model-hidden": f"[{INT32_MAX}]"})
config("config model-hidden string '64,abc'", "model-hidden", {"model-hidden": '"64,abc"'})
config("config policy-hidden with a negative element", "policy-hidden", {"policy-hidden": "[32, -1]"})
config("config env = \"nope\"", "nope", {"env": '"nope"'})
config("config env = 3", "env", {"env": "3"})
config("config device = \"gpu0\"", "device", {"device": '"gpu0"'})
config("config model-activation = \"gelu\"", "model-activation", {"model-activation": '"gelu"'})
config("config unknown key", "bogus", lines="bogus = 1\n")
config("config a typo of a key 'iteration'", "iteration", lines="iteration = 3\n")
config("config unknown section", "bogus", text=config_text() + "[bogus]\nx = 1\n")
config("config a sub-table [train.extra]", "extra", text=config_text() + "[train.extra]\nx = 1\n")
config("config key before [train]", "models", before="models = 3\n", replace={"models": None})
config("config no [train] section", "train", text="[settings]\n" + config_text()[len("[train]\n"):])
config("config binary garbage", re.compile(r"bad\.toml", re.I), text="\x00\x01\x02\xff\xfe garbage \x00\n")
config("config missing file", "missing.toml", args=("train", "--config", "{tmp}/missing.toml", "--run-dir", "{new}"))
config("config a directory", "{tmp}", args=("train", "--config", "{tmp}", "--run-dir", "{new}"))
config("config --config empty", "--config", args=("train", "--config", "", "--run-dir", "{new}"))

# --------------------------------------------------------------------------------------------
# 3. The run directory: checked before anything is written
# --------------------------------------------------------------------------------------------


def keep_only_config(run: Path) -> None:
    """A run killed before its first checkpoint: only config.toml and an empty checkpoints/."""
    for entry in run.iterdir():
        if entry.name != "config.toml":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    (run / "checkpoints").mkdir()


def write(relative: str, data: Union[str, bytes]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        path = run / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return apply


def make_dir(relative: str) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        path = run / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        path.mkdir()
        (path / "x").write_text("x")
    return apply


def run_dir(name: str, args: Tuple[str, ...], needle: Needle, corrupt=None) -> None:
    add(Case(name=name, breaks="run_dir", args=args, needle=needle, corrupt=corrupt))


FRESH = TRAIN[:-1]  # train ... --run-dir (the path follows)
run_dir("train --run-dir is a regular file", (*FRESH, "{file}"), "{file}")
run_dir("train --run-dir below a regular file", (*FRESH, "{file}/sub"), "{file}")
run_dir("train --run-dir empty", (*FRESH, ""), "--run-dir")
run_dir("train fresh start over an existing run", (*FRESH, "{run}"), "{run}")
run_dir("train --run-dir is a file of a run (progress.csv)", (*FRESH, "{run}/progress.csv"), "progress.csv")
run_dir("train --resume of a missing directory", ("train", "--resume", "--run-dir", "{new}", "--quiet"), "{new}")
run_dir("train --resume without --run-dir", ("train", "--resume", "--quiet"), "--run-dir")
run_dir("train --resume --run-dir is a regular file", ("train", "--resume", "--run-dir", "{file}"), "{file}")
run_dir("train --resume with a garbage config.toml", RESUME, "config.toml", write("config.toml", "models = = \x00\n"))
run_dir("train --resume with config.toml a directory", RESUME, "config.toml", make_dir("config.toml"))
run_dir("train --resume with checkpoints a regular file", RESUME, "checkpoints", write("checkpoints", "x"))
run_dir("train --resume --models 4 (not the run's)", (*RESUME, "--models", "4"), "models")
run_dir("train --resume --env hopper (not the run's)", (*RESUME, "--env", "hopper"), "env")
run_dir("train --resume --model-hidden 16 (not the run's)", (*RESUME, "--model-hidden", "16"), "model-hidden")
run_dir("eval --run-dir killed before its first checkpoint", EVAL, "checkpoint", keep_only_config)
run_dir("eval --run-dir an empty directory", ("eval", "--run-dir", "{tmp}", "--episodes", "1"), "{tmp}")
run_dir("eval --run-dir is a regular file", ("eval", "--run-dir", "{file}", "--episodes", "1"), "{file}")
run_dir("eval --checkpoint the checkpoints folder", ("eval", "--checkpoint", "{run}/checkpoints", "--episodes", "1"),
        "checkpoints")
run_dir("eval --checkpoint progress.csv", ("eval", "--checkpoint", "{run}/progress.csv", "--episodes", "1"),
        "progress.csv")
run_dir("eval --checkpoint a missing path", ("eval", "--checkpoint", "{tmp}/nothing-here", "--episodes", "1"),
        "nothing-here")

# --------------------------------------------------------------------------------------------
# 4. Checkpoints
# --------------------------------------------------------------------------------------------


def iter_dirs(run: Path) -> list:
    return sorted(p for p in (run / "checkpoints").iterdir() if p.is_dir() and p.name.startswith("iter-"))


def fnv1a(data: bytes) -> int:
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def st_read(path: Path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def st_write(path: Path, header: dict, data: bytes) -> None:
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


# Edits of one file (path -> None).
def flip(offset: int, mask: int):
    def apply(path: Path) -> None:
        b = bytearray(path.read_bytes())
        b[offset] ^= mask
        path.write_bytes(bytes(b))
    return apply


def flip_first(pattern: bytes, mask: int):
    def apply(path: Path) -> None:
        b = bytearray(path.read_bytes())
        i = b.index(pattern)
        b[i] ^= mask
        path.write_bytes(bytes(b))
    return apply


def truncate_to(fraction: float = 0.5, minus: int = 0):
    def apply(path: Path) -> None:
        b = path.read_bytes()
        path.write_bytes(b[:int(len(b) * fraction) - minus])
    return apply


def replace_with(data: bytes):
    return lambda path: path.write_bytes(data)


def append(data: bytes):
    return lambda path: path.write_bytes(path.read_bytes() + data)


def remove(path: Path) -> None:
    path.unlink()


def to_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def st_header_length(value: Callable[[int, int], int]):
    """Sets the 8-byte header length to value(old_length, file_size)."""
    def apply(path: Path) -> None:
        b = path.read_bytes()
        (n,) = struct.unpack("<Q", b[:8])
        path.write_bytes(struct.pack("<Q", value(n, len(b))) + b[8:])
    return apply


def st_raw_header(make: Callable[[int], bytes]):
    """Replaces the header JSON by make(its length) (the same length, so the data stays put)."""
    def apply(path: Path) -> None:
        b = path.read_bytes()
        (n,) = struct.unpack("<Q", b[:8])
        h = make(n)
        assert len(h) == n
        path.write_bytes(b[:8] + h + b[8 + n:])
    return apply


def st_edit(edit_header: Callable[[dict], None], edit_data: Callable[[bytes], bytes] = lambda d: d):
    def apply(path: Path) -> None:
        header, data = st_read(path)
        edit_header(header)
        st_write(path, header, edit_data(data))
    return apply


def st_set_f32(tensor: str, index: int, value: float):
    """One float32 of a tensor set in place (the header bytes untouched)."""
    def apply(path: Path) -> None:
        b = bytearray(path.read_bytes())
        (n,) = struct.unpack("<Q", b[:8])
        header = json.loads(b[8:8 + n])
        start = 8 + n + header[tensor]["data_offsets"][0] + 4 * index
        b[start:start + 4] = struct.pack("<f", value)
        path.write_bytes(bytes(b))
    return apply


def tensor(name, **fields):
    def edit(header: dict) -> None:
        header[name].update(fields)
    return edit


def metadata(**fields):
    def edit(header: dict) -> None:
        header.setdefault("__metadata__", {}).update(fields)
    return edit


def drop_tensor(name):
    def edit(header: dict) -> None:
        del header[name]
    return edit


# policy.safetensors of a checkpoint: adapted [6, 1250] at [0, 30000), theta [1250] at [30000, 35000).
def overlap(header: dict) -> None:
    header["theta"]["data_offsets"] = [25000, 30000]


def hole(header: dict) -> None:
    header["theta"]["data_offsets"] = [30008, 35008]


DS_HEADER = struct.Struct("<8siiQQQ")  # magic, obs_dim, act_dim, capacity, size, total_added


def ds_edit(**fields):
    """dataset.bin with header fields changed (or a float of the first row: obs0=...), checksum made right."""
    def apply(path: Path) -> None:
        b = bytearray(path.read_bytes()[:-8])
        magic, obs, act, cap, size, total = DS_HEADER.unpack_from(b)
        values = dict(obs_dim=obs, act_dim=act, capacity=cap, size=size, total_added=total)
        for key, value in fields.items():
            if key == "obs0":
                b[DS_HEADER.size:DS_HEADER.size + 4] = struct.pack("<f", value)
            else:
                values[key] = value
        DS_HEADER.pack_into(b, 0, magic, values["obs_dim"], values["act_dim"], values["capacity"], values["size"],
                            values["total_added"])
        path.write_bytes(bytes(b) + struct.pack("<Q", fnv1a(bytes(b))))
    return apply


def json_edit(edit: Callable[[dict], object]):
    def apply(path: Path) -> None:
        state = json.loads(path.read_text())
        result = edit(state)
        path.write_text(json.dumps(state if result is None else result, indent=2))
    return apply


def set_key(*keys, value):
    def edit(state):
        d = state
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


def del_key(*keys):
    def edit(state):
        d = state
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return edit


def on(file: str, edit: Callable[[Path], None], where: str = "latest") -> Callable[[Path], None]:
    """Applies edit to FILE of the newest checkpoint ('latest'), of every checkpoint ('both'), or
    of the final policy ('final', file ignored)."""
    def apply(run: Path) -> None:
        if where == "final":
            edit(run / "policy.safetensors")
            return
        dirs = iter_dirs(run)
        assert len(dirs) >= 2, dirs
        for d in (dirs if where == "both" else dirs[-1:]):
            edit(d / file)
    apply.__name__ = f"{where}:{file}"
    return apply


def checkpoint(name, args, needle, corrupt, expect="error") -> None:
    add(Case(name=name, breaks="checkpoint", args=args, needle=needle, corrupt=corrupt, expect=expect))


# A damaged file of the newest checkpoint: train --resume and eval --run-dir fall back to the older
# checkpoint with a warning naming the file; eval --checkpoint of that checkpoint refuses it. Every
# reader verifies every file against the checksums in state.json, so each command meets each damage;
# the models and the dataset are read by eval --adapt.
EVAL_LATEST = ("eval", "--checkpoint", "{latest}", "--episodes", "1", "--device", "cpu")
ADAPTS = {"models.safetensors", "dataset.bin"}


def corrupted(file: str, label: str, edit) -> None:
    adapt = ("--adapt",) if file in ADAPTS else ()
    checkpoint(f"resume: {file} {label}", RESUME, file, on(file, edit), expect="fallback")
    checkpoint(f"eval --run-dir: {file} {label}", (*EVAL, *adapt), file, on(file, edit), expect="fallback")
    checkpoint(f"eval --checkpoint: {file} {label}", (*EVAL_LATEST, *adapt), file, on(file, edit))


P = "policy.safetensors"
corrupted(P, "bit flip in the header length", flip(1, 0x01))
corrupted(P, "bit flip in the header JSON", flip(8, 0x01))
corrupted(P, "bit flip in a dtype (F32 -> N32)", flip_first(b"F32", 0x08))
corrupted(P, "NaN in theta", st_set_f32("theta", 0, math.nan))
corrupted(P, "inf in theta", st_set_f32("theta", 7, math.inf))
corrupted(P, "NaN in adapted", st_set_f32("adapted", 3, math.nan))
corrupted(P, "header length beyond the file", st_header_length(lambda n, size: size + 100))
corrupted(P, "header length 2**63", st_header_length(lambda n, size: 2**63))
corrupted(P, "header length 0", st_header_length(lambda n, size: 0))
corrupted(P, "non-JSON header", st_raw_header(lambda n: b"x" * n))
corrupted(P, "header a JSON array", st_raw_header(lambda n: b"[]" + b" " * (n - 2)))
corrupted(P, "overlapping data_offsets", st_edit(overlap, lambda d: d[:30000]))
corrupted(P, "a hole between tensors", st_edit(hole, lambda d: d[:30000] + bytes(8) + d[30000:]))
corrupted(P, "trailing bytes after the data", append(bytes(64)))
corrupted(P, "data_offsets beyond the data", st_edit(tensor("theta", data_offsets=[31000, 36000])))
corrupted(P, "reversed data_offsets", st_edit(tensor("theta", data_offsets=[35000, 30000])))
corrupted(P, "negative data_offsets", st_edit(tensor("theta", data_offsets=[-5000, 0])))
corrupted(P, "data_offsets as strings", st_edit(tensor("theta", data_offsets=["30000", "35000"])))
corrupted(P, "wrong dtype I32", st_edit(tensor("theta", dtype="I32")))
corrupted(P, "unknown dtype", st_edit(tensor("theta", dtype="Q7")))
corrupted(P, "dtype F64 of the same bytes", st_edit(tensor("theta", dtype="F64", shape=[625])))
corrupted(P, "wrong shape rank [625, 2]", st_edit(tensor("theta", shape=[625, 2])))
corrupted(P, "wrong parameter count [1251]",
          st_edit(tensor("theta", shape=[1251], data_offsets=[30000, 35004]), lambda d: d + bytes(4)))
corrupted(P, "theta missing", st_edit(drop_tensor("theta"), lambda d: d[:30000]))
corrupted(P, "metadata value not a string", st_edit(metadata(env=5)))
corrupted(P, "truncated to half", truncate_to(0.5))
corrupted(P, "truncated by one byte", truncate_to(1.0, minus=1))
corrupted(P, "empty", replace_with(b""))
corrupted(P, "shorter than its length field", replace_with(b"\x01\x02\x03"))
corrupted(P, "missing", remove)
corrupted(P, "a directory", to_directory)

M = "models.safetensors"
corrupted(M, "bit flip in the header length", flip(1, 0x01))
corrupted(M, "bit flip in the header JSON", flip(8, 0x01))
corrupted(M, "bit flip in a dtype (F32 -> N32)", flip_first(b"F32", 0x08))
corrupted(M, "NaN in layer0.v", st_set_f32("layer0.v", 5, math.nan))
corrupted(M, "inf in normalization.input_std", st_set_f32("normalization.input_std", 0, math.inf))
corrupted(M, "metadata models 4 (the tensors hold 3)", st_edit(metadata(models="4")))
corrupted(M, "metadata hidden 'abc'", st_edit(metadata(hidden="abc")))
corrupted(M, "metadata format 'nope'", st_edit(metadata(format="nope")))
corrupted(M, "metadata activation 'gelu'", st_edit(metadata(activation="gelu")))
corrupted(M, "layer1.v wrong shape [3, 1024]", st_edit(tensor("layer1.v", shape=[3, 1024])))
corrupted(M, "overlapping data_offsets", st_edit(lambda h: h["layer0.b"].update(data_offsets=h["layer0.g"]["data_offsets"])))
corrupted(M, "layer2.b missing", st_edit(drop_tensor("layer2.b")))
corrupted(M, "header length beyond the file", st_header_length(lambda n, size: size + 1))
corrupted(M, "truncated to half", truncate_to(0.5))
corrupted(M, "empty", replace_with(b""))
corrupted(M, "missing", remove)

D = "dataset.bin"
corrupted(D, "bit flip in the magic", flip(0, 0x01))
corrupted(D, "bit flip in a transition", flip(4000, 0x10))
corrupted(D, "bit flip in the checksum", flip(-1, 0x80))
corrupted(D, "truncated to half", truncate_to(0.5))
corrupted(D, "truncated by one byte", truncate_to(1.0, minus=1))
corrupted(D, "trailing bytes", append(bytes(13)))
corrupted(D, "empty", replace_with(b""))
corrupted(D, "missing", remove)
corrupted(D, "capacity 2**32 (checksum right)", ds_edit(capacity=2**32))
corrupted(D, "capacity 2**62 (checksum right)", ds_edit(capacity=2**62))
corrupted(D, "capacity 50000, not the run's (checksum right)", ds_edit(capacity=50000))
corrupted(D, "size beyond capacity (checksum right)", ds_edit(size=200000))
corrupted(D, "obs_dim 5 (checksum right)", ds_edit(obs_dim=5))
corrupted(D, "NaN in a transition (checksum right)", ds_edit(obs0=math.nan))

S = "state.json"
corrupted(S, "bit flip in the first byte", flip(0, 0x01))
corrupted(S, "iterations_done -1", json_edit(set_key("iterations_done", value=-1)))
corrupted(S, "iterations_done a string", json_edit(set_key("iterations_done", value="2")))
corrupted(S, "iterations_done 1.5", json_edit(set_key("iterations_done", value=1.5)))
corrupted(S, "iterations_done missing", json_edit(del_key("iterations_done")))
corrupted(S, "real_steps -1", json_edit(set_key("real_steps", value=-1)))
corrupted(S, "episodes_started a string", json_edit(set_key("episodes_started", value="x")))
corrupted(S, "format 'nope'", json_edit(set_key("format", value="nope")))
corrupted(S, "version 999", json_edit(set_key("version", value=999)))
corrupted(S, "a JSON array", json_edit(lambda s: [s]))
corrupted(S, "config missing", json_edit(del_key("config")))
corrupted(S, "config a string", json_edit(set_key("config", value="x")))
corrupted(S, "config rollouts_per_task 0", json_edit(set_key("config", "rollouts_per_task", value=0)))
corrupted(S, "config imagined_horizon -1", json_edit(set_key("config", "imagined_horizon", value=-1)))
corrupted(S, "config inner_lr 1e30", json_edit(set_key("config", "inner_lr", value=1e30)))
corrupted(S, "config models 0", json_edit(set_key("config", "models", value=0)))
corrupted(S, "config env 'nope'", json_edit(set_key("config", "env", value="nope")))
corrupted(S, "config model_hidden [32, -1]", json_edit(set_key("config", "model_hidden", value=[32, -1])))
corrupted(S, "trailing garbage", append(b"\x00garbage"))
corrupted(S, "truncated to half", truncate_to(0.5))
corrupted(S, "empty", replace_with(b""))
corrupted(S, "missing", remove)


def latest_file(data: Union[str, bytes, None]):
    def apply(run: Path) -> None:
        path = run / "checkpoints" / "latest"
        path.unlink()
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data.encode() if isinstance(data, str) else data)
    return apply


for label, data, needle in (("names a missing directory", "iter-000009\n", "iter-000009"),
                            ("garbage bytes", b"\x00\xff\xfe\x01garbage", "latest"),
                            ("empty", "", "latest"),
                            ("a path out of checkpoints/", "../../../..\n", "latest"),
                            ("an absolute path", "/tmp\n", "latest"),
                            ("names a file", "iter-000001/state.json\n", "latest"),
                            ("a directory", None, "latest")):
    # A folder named latest cannot be replaced by the file a resumed run writes: refused up front.
    checkpoint(f"resume: checkpoints/latest {label}", RESUME, needle, latest_file(data),
               expect="error" if data is None else "fallback")
    checkpoint(f"eval: checkpoints/latest {label}", EVAL, needle, latest_file(data), expect="fallback")


def all_of(*edits):
    def apply(run: Path) -> None:
        for e in edits:
            e(run)
    return apply


def delete_iter_dirs(run: Path) -> None:
    for d in iter_dirs(run):
        shutil.rmtree(d)


# Both checkpoints corrupt: no fallback, exit 2 naming the file, and nothing changed.
for file, label, edit in ((P, "bit flip in the header JSON", flip(8, 0x01)), (P, "NaN in theta", st_set_f32("theta", 0, math.nan)),
                          (M, "truncated to half", truncate_to(0.5)), (D, "bit flip in a transition", flip(4000, 0x10)),
                          (S, "bit flip in the first byte", flip(0, 0x01)),
                          (S, "config rollouts_per_task 0", json_edit(set_key("config", "rollouts_per_task", value=0)))):
    checkpoint(f"resume: {file} {label} in both checkpoints", RESUME, file, on(file, edit, "both"))
    checkpoint(f"eval: {file} {label} in both checkpoints", (*EVAL, *(("--adapt",) if file in ADAPTS else ())), file,
               on(file, edit, "both"))
checkpoint("resume: latest garbage and both policies flipped", RESUME, P,
           all_of(latest_file(b"\x00garbage"), on(P, flip(8, 0x01), "both")))
checkpoint("resume: every iter-N directory deleted", RESUME, "iter-000002", delete_iter_dirs)
checkpoint("eval: every iter-N directory deleted", EVAL, "iter-000002", delete_iter_dirs)

# eval --checkpoint of the final policy file, whose content checks (not only its checksum) are met
# by edits that keep the tensor bytes.
EVAL_FINAL = ("eval", "--checkpoint", "{final}", "--episodes", "1", "--device", "cpu")
# Its tensors are named per layer (host/train/policy_file.hpp): 0.weight [32, 4] ... log_std [1].
for label, edit in (("NaN in 0.weight", st_set_f32("0.weight", 2, math.nan)),
                    ("inf in log_std", st_set_f32("log_std", 0, math.inf)),
                    ("bit flip in the header JSON", flip(8, 0x01)),
                    ("config metadata not JSON", st_edit(metadata(config="{not json"))),
                    ("env metadata 'nope'", st_edit(metadata(env="nope"))),
                    ("format metadata 'mbmpo.policy.v9'", st_edit(metadata(format="mbmpo.policy.v9"))),
                    ("0.weight transposed [4, 32]", st_edit(tensor("0.weight", shape=[4, 32]))),
                    ("truncated to half", truncate_to(0.5)), ("header length beyond the file",
                                                             st_header_length(lambda n, size: size + 8))):
    checkpoint(f"eval final policy.safetensors: {label}", EVAL_FINAL, P, on(P, edit, "final"))

# --------------------------------------------------------------------------------------------
# 5. The Python API (each case runs in its own interpreter; PRELUDE is run first)
# --------------------------------------------------------------------------------------------
PRELUDE = r'''
import math, os
import numpy as np
import mbmpo
nan, inf = float("nan"), float("inf")
TASK = "inverted_pendulum"  # obs 4, act 1
TINY = dict(env=TASK, random_steps=500, horizon=100, eval_episodes=3, models=3, model_hidden=[32, 32],
            model_max_epochs=20, meta_batch=6, rollouts_per_task=10, imagined_horizon=30, meta_steps=4,
            inner_lr=0.05, iterations=1, device="cpu")
def tiny(**over):
    s = dict(TINY); s.update(over); return s
def env():
    e = mbmpo.Env(TASK, seed=0); e.reset(); return e
def episode(T=50, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((T, 4)).astype(np.float32)
    act = rng.uniform(-1, 1, (T, 1)).astype(np.float32)
    nxt = (obs + 0.1 * rng.standard_normal((T, 4))).astype(np.float32)
    rew = np.ones(T, np.float32)
    done = np.zeros(T, bool)
    return obs, act, nxt, rew, done
def dataset(T=200):
    d = mbmpo.Dataset(4, 1, capacity=1000); d.add(*episode(T)); return d
def ensemble():
    return mbmpo.DynamicsEnsemble(4, 1, models=2, hidden=[8], device="cpu")
def policy():
    return mbmpo.GaussianPolicy(4, 1, hidden=[8])
def rollout_inputs(tasks=2, rollouts=3):
    e, p = ensemble(), policy()
    theta = p.initial_parameters(seed=0)
    return e, p, theta, np.tile(theta, (tasks, 1)), np.zeros((tasks, rollouts, 4), np.float32)
def set_metadata(path, **values):
    """Metadata of a .safetensors file changed in place (the tensor bytes, and their checksum, kept)."""
    import json, struct
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"].update(values)
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
def trajectories():
    e, p, theta, params, start = rollout_inputs()
    t = mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=5)
    return e, p, theta, params, start, t, mbmpo.compute_advantages(t)
'''

# The valid calls every Python case's setup builds on (test_bad_input.py runs them as a control).
PYTHON_CONTROL = r'''
e = env(); e.step(np.zeros(1, np.float32)); e.reset(seed=3)
d = dataset(); assert len(d) == 200
m = ensemble(); m.fit(d, max_epochs=1)
obs, act, _, _, _ = episode(7)
assert m.predict(obs, act).shape == (7, 4)
m.predict(obs, act, out=np.empty((7, 4), np.float32), model_of_row=[0, 1, 0, 1, 0, 1, 1])
e2, p, theta, params, start, t, a = trajectories()
adapted = mbmpo.inner_step(p, theta, t, a, inner_lr=0.01)
post = mbmpo.imagined_rollout(e2, TASK, p, adapted, start, horizon=5, draw=1)
mbmpo.meta_update(p, theta, adapted, t, a, post, mbmpo.compute_advantages(post), inner_lr=0.01)
m.save(os.path.join(tmp, "m.safetensors")); m.load_weights(os.path.join(tmp, "m.safetensors"))
assert mbmpo.DynamicsEnsemble.load(os.path.join(tmp, "m.safetensors"), device="cpu").models == 2
d.save(os.path.join(tmp, "d.bin")); assert len(mbmpo.Dataset.load(os.path.join(tmp, "d.bin"))) == 200
r = mbmpo.eval(run, episodes=1, device="cpu"); assert r["episodes"] == 1
pol = mbmpo.Policy.load(run, device="cpu"); assert pol.predict(np.zeros((2, 4), np.float32)).shape == (2, 1)
pol.save(os.path.join(tmp, "p.safetensors")); assert mbmpo.Policy.load(os.path.join(tmp, "p.safetensors")).task == TASK
assert m.predict_all(obs, act).shape == (2, 7, 4) and m.disagreement(obs, act).shape == (7, 4)
assert len(mbmpo.Dataset.load(run)) > 0 and mbmpo.DynamicsEnsemble.load(run).models == 3
me = mbmpo.ModelEnv(m, TASK, 7); me.reset(obs); assert me.step(act)[0].shape == (7, 4)
'''


def py(name: str, code: str, needle: Needle, setup: str = "", exc: Tuple[str, ...] = ("TypeError", "ValueError")):
    add(Case(name=name, breaks="python", code=code, setup=setup, needle=needle, expect="raises", exc=exc))


FILE_ERRORS = ("ValueError", "OSError")

# Env
py("Env render_mode='human'", "mbmpo.Env(TASK, render_mode='human')", "render_mode")
py("Env render_mode='rgb'", "mbmpo.Env(TASK, render_mode='rgb')", "render_mode")
py("Env width=0", "mbmpo.Env(TASK, render_mode='rgb_array', width=0)", "width")
py("Env height=10**6", "mbmpo.Env(TASK, render_mode='rgb_array', height=10**6)", "height")
py("Env seed='x'", "mbmpo.Env(TASK, seed='x')", "seed")
py("Env seed=-1", "mbmpo.Env(TASK, seed=-1)", "seed")
py("Env seed=1.5", "mbmpo.Env(TASK, seed=1.5)", "seed")
py("Env seed=2**64", "mbmpo.Env(TASK, seed=2**64)", "seed")
py("Env seed=None", "mbmpo.Env(TASK, seed=None)", "seed")
py("Env max_episode_steps=0", "mbmpo.Env(TASK, max_episode_steps=0)", "max_episode_steps")
py("Env max_episode_steps=-5", "mbmpo.Env(TASK, max_episode_steps=-5)", "max_episode_steps")
py("Env unknown task", "mbmpo.Env('nope')", "nope")
py("Env empty task name", "mbmpo.Env('')", "task")
py("Env task not a string", "mbmpo.Env(3)", "task")
py("Env.reset seed='x'", "e.reset(seed='x')", "seed", setup="e = env()")
py("Env.reset seed=-1", "e.reset(seed=-1)", "seed", setup="e = env()")
py("Env.step 'abc'", "e.step('abc')", "action", setup="e = env()")
py("Env.step None", "e.step(None)", "action", setup="e = env()")
py("Env.step wrong size", "e.step(np.zeros(3, np.float32))", "action", setup="e = env()")
py("Env.step empty", "e.step([])", "action", setup="e = env()")
py("Env.step ragged list", "e.step([[1.0, 2.0], [3.0]])", "action", setup="e = env()")
py("Env.step NaN action", "e.step(np.array([nan], np.float32))", "action", setup="e = env()")
py("Env.step inf action", "e.step([inf])", "action", setup="e = env()")
py("Env.step before reset", "mbmpo.Env(TASK).step(np.zeros(1, np.float32))", "reset")

# Dataset
py("Dataset capacity=10**13", "mbmpo.Dataset(4, 1, capacity=10**13)", "capacity")
py("Dataset capacity=0", "mbmpo.Dataset(4, 1, capacity=0)", "capacity")
py("Dataset capacity=-1", "mbmpo.Dataset(4, 1, capacity=-1)", "capacity")
py("Dataset capacity='10'", "mbmpo.Dataset(4, 1, capacity='10')", "capacity")
py("Dataset obs_dim=0", "mbmpo.Dataset(0, 1)", "obs_dim")
py("Dataset act_dim=-1", "mbmpo.Dataset(4, -1)", "act_dim")
py("Dataset obs_dim=2**31", "mbmpo.Dataset(2**31, 1)", "obs_dim")
py("Dataset obs_dim=10**6 act_dim=10**6", "mbmpo.Dataset(10**6, 10**6, capacity=10**5)", "capacity")
py("Dataset.add obs wrong width", "d.add(o[:, :3].copy(), a, n, r, f)", "obs",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.add obs float64", "d.add(o.astype(np.float64), a, n, r, f)", "obs",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.add act rows mismatch", "d.add(o, a[:5].copy(), n, r, f)", "act",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.add next_obs rows mismatch", "d.add(o, a, n[:9].copy(), r, f)", "next_obs",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.add NaN obs", "o[3, 1] = nan; d.add(o, a, n, r, f)", "obs",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.add inf reward", "r[0] = inf; d.add(o, a, n, r, f)", "reward",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.add done not bool", "d.add(o, a, n, r, f.astype(np.int32))", "done",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.add obs a string", "d.add('obs', a, n, r, f)", "obs",
   setup="d = dataset(); o, a, n, r, f = episode(10)")
py("Dataset.load missing file", "mbmpo.Dataset.load(os.path.join(tmp, 'nothing.bin'))", "nothing.bin", exc=FILE_ERRORS)
py("Dataset.load truncated file", "mbmpo.Dataset.load(p)", "d.bin",
   setup="d = dataset(); p = os.path.join(tmp, 'd.bin'); d.save(p); b = open(p, 'rb').read(); "
         "open(p, 'wb').write(b[:len(b) // 2])")
py("Dataset.save into a missing directory", "dataset().save(os.path.join(tmp, 'no', 'dir', 'd.bin'))", "d.bin",
   exc=FILE_ERRORS)

# DynamicsEnsemble
py("DynamicsEnsemble hidden=[2**31-1]", "mbmpo.DynamicsEnsemble(4, 1, hidden=[2**31 - 1], device='cpu')", "hidden")
py("DynamicsEnsemble hidden=[2**31]", "mbmpo.DynamicsEnsemble(4, 1, hidden=[2**31], device='cpu')", "hidden")
py("DynamicsEnsemble hidden=[65536, 65536]", "mbmpo.DynamicsEnsemble(4, 1, hidden=[65536, 65536], device='cpu')",
   "hidden")
py("DynamicsEnsemble hidden=[0]", "mbmpo.DynamicsEnsemble(4, 1, hidden=[0], device='cpu')", "hidden")
py("DynamicsEnsemble hidden=[-3]", "mbmpo.DynamicsEnsemble(4, 1, hidden=[-3], device='cpu')", "hidden")
py("DynamicsEnsemble hidden='abc'", "mbmpo.DynamicsEnsemble(4, 1, hidden='abc', device='cpu')", "hidden")
py("DynamicsEnsemble models=0", "mbmpo.DynamicsEnsemble(4, 1, models=0, device='cpu')", "models")
py("DynamicsEnsemble models=2**31-1", "mbmpo.DynamicsEnsemble(4, 1, models=2**31 - 1, hidden=[8], device='cpu')",
   "models")
py("DynamicsEnsemble activation='gelu'", "mbmpo.DynamicsEnsemble(4, 1, activation='gelu', device='cpu')", "activation")
py("DynamicsEnsemble device='gpu0'", "mbmpo.DynamicsEnsemble(4, 1, hidden=[8], device='gpu0')", "device")
py("DynamicsEnsemble obs_dim=0", "mbmpo.DynamicsEnsemble(0, 1, hidden=[8], device='cpu')", "obs_dim")
py("DynamicsEnsemble act_dim=-1", "mbmpo.DynamicsEnsemble(4, -1, hidden=[8], device='cpu')", "act_dim")
py("DynamicsEnsemble seed=-1", "mbmpo.DynamicsEnsemble(4, 1, hidden=[8], seed=-1, device='cpu')", "seed")
PREDICT = "m = ensemble(); o, a, _, _, _ = episode(6)"
POLICY = "pol = mbmpo.Policy.load(run, device='cpu')"
py("predict NaN obs", "o[2, 0] = nan; m.predict(o, a)", "obs", setup=PREDICT)
py("predict inf act", "a[1, 0] = inf; m.predict(o, a)", "act", setup=PREDICT)
py("predict obs wrong width", "m.predict(np.zeros((6, 5), np.float32), a)", "obs", setup=PREDICT)
py("predict obs float64", "m.predict(o.astype(np.float64), a)", "obs", setup=PREDICT)
py("predict obs 1-D", "m.predict(o[0].copy(), a)", "obs", setup=PREDICT)
py("predict act rows mismatch", "m.predict(o, a[:5].copy())", "act", setup=PREDICT)
py("predict out wrong shape", "m.predict(o, a, out=np.empty((6, 3), np.float32))", "out", setup=PREDICT)
py("predict out read-only", "z = np.empty((6, 4), np.float32); z.setflags(write=False); m.predict(o, a, out=z)", "out",
   setup=PREDICT)
py("predict model_of_row out of range", "m.predict(o, a, model_of_row=[0, 1, 0, 1, 0, 99])", "model_of_row",
   setup=PREDICT)
py("predict model_of_row negative", "m.predict(o, a, model_of_row=[0, 1, 0, 1, 0, -1])", "model_of_row", setup=PREDICT)
py("predict model_of_row wrong length", "m.predict(o, a, model_of_row=[0, 1])", "model_of_row", setup=PREDICT)
FIT = "m = ensemble(); d = dataset()"
py("fit learning_rate=nan", "m.fit(d, learning_rate=nan, max_epochs=1)", "learning_rate", setup=FIT)
py("fit learning_rate=-1", "m.fit(d, learning_rate=-1.0, max_epochs=1)", "learning_rate", setup=FIT)
py("fit batch_size=0", "m.fit(d, batch_size=0, max_epochs=1)", "batch_size", setup=FIT)
py("fit max_epochs=-1", "m.fit(d, max_epochs=-1)", "max_epochs", setup=FIT)
py("fit validation_fraction=1.5", "m.fit(d, validation_fraction=1.5, max_epochs=1)", "validation_fraction", setup=FIT)
py("fit validation_fraction=nan", "m.fit(d, validation_fraction=nan, max_epochs=1)", "validation_fraction", setup=FIT)
py("fit dataset of other sizes", "m.fit(mbmpo.Dataset(5, 1), max_epochs=1)", "dataset", setup=FIT)
py("fit an empty dataset", "m.fit(mbmpo.Dataset(4, 1), max_epochs=1)", "dataset", setup=FIT)
py("fit dataset not a Dataset", "m.fit('data', max_epochs=1)", "dataset", setup=FIT)
py("DynamicsEnsemble.load_weights missing file", "ensemble().load_weights(os.path.join(tmp, 'nothing.safetensors'))",
   "nothing.safetensors", exc=FILE_ERRORS)
py("DynamicsEnsemble.load_weights other hidden sizes", "mbmpo.DynamicsEnsemble(4, 1, models=2, hidden=[16], device='cpu')"
   ".load_weights(p)", "hidden", setup="p = os.path.join(tmp, 'm8.safetensors'); ensemble().save(p)")
py("DynamicsEnsemble.load_weights a garbage file", "ensemble().load_weights(p)", "junk.safetensors",
   setup="p = os.path.join(tmp, 'junk.safetensors'); open(p, 'wb').write(b'\\x10' + bytes(40))")
py("DynamicsEnsemble.load missing file", "mbmpo.DynamicsEnsemble.load(os.path.join(tmp, 'nothing.safetensors'))",
   "nothing.safetensors", exc=FILE_ERRORS)
py("DynamicsEnsemble.load a garbage file", "mbmpo.DynamicsEnsemble.load(p)", "junk.safetensors",
   setup="p = os.path.join(tmp, 'junk.safetensors'); open(p, 'wb').write(b'\\x10' + bytes(40))")
py("DynamicsEnsemble.load a policy file", "mbmpo.DynamicsEnsemble.load(os.path.join(run, 'policy.safetensors'))",
   "not a dynamics-ensemble file")
py("DynamicsEnsemble.load hidden metadata 'x'", "mbmpo.DynamicsEnsemble.load(p)", "hidden",
   setup="p = os.path.join(tmp, 'm9.safetensors'); ensemble().save(p); set_metadata(p, hidden='x')")
py("DynamicsEnsemble.load models metadata '-2'", "mbmpo.DynamicsEnsemble.load(p)", "models",
   setup="p = os.path.join(tmp, 'm10.safetensors'); ensemble().save(p); set_metadata(p, models='-2')")
py("DynamicsEnsemble.load models metadata '+3'", "mbmpo.DynamicsEnsemble.load(p)", "models",
   setup="p = os.path.join(tmp, 'm14.safetensors'); ensemble().save(p); set_metadata(p, models='+3')")
py("DynamicsEnsemble.load tf32 metadata 'maybe'", "mbmpo.DynamicsEnsemble.load(p)", "tf32",
   setup="p = os.path.join(tmp, 'm15.safetensors'); ensemble().save(p); set_metadata(p, tf32='maybe')")
py("DynamicsEnsemble.load activation metadata 'gelu'", "mbmpo.DynamicsEnsemble.load(p)", "activation",
   setup="p = os.path.join(tmp, 'm11.safetensors'); ensemble().save(p); set_metadata(p, activation='gelu')")
py("DynamicsEnsemble.load a directory without checkpoints", "mbmpo.DynamicsEnsemble.load(tmp)", "{tmp}",
   exc=FILE_ERRORS)
py("DynamicsEnsemble.load device='tpu'", "mbmpo.DynamicsEnsemble.load(p, device='tpu')", "tpu",
   setup="p = os.path.join(tmp, 'm12.safetensors'); ensemble().save(p)")
py("predict_all act of other rows", "m.predict_all(o, a[:3])", "act", setup=PREDICT)
py("predict_all obs float64", "m.predict_all(o.astype(np.float64), a)", "obs", setup=PREDICT)
py("disagreement NaN in obs", "o[1, 2] = nan; m.disagreement(o, a)", "obs", setup=PREDICT)
py("disagreement out of the wrong shape", "m.disagreement(o, a, out=np.empty((7, 3), np.float32))", "out",
   setup=PREDICT)

# Policy (a trained one, from a run directory of one tiny iteration)
py("Policy.load missing path", "mbmpo.Policy.load(os.path.join(tmp, 'nothing'))", "nothing", exc=FILE_ERRORS)
py("Policy.load a garbage file", "mbmpo.Policy.load(p)", "junk.safetensors",
   setup="p = os.path.join(tmp, 'junk.safetensors'); open(p, 'wb').write(b'\\x10' + bytes(40))")
py("Policy.load a model file", "mbmpo.Policy.load(p)", "config",
   setup="p = os.path.join(tmp, 'm13.safetensors'); ensemble().save(p)")
py("Policy.load a directory without checkpoints", "mbmpo.Policy.load(tmp)", "{tmp}", exc=FILE_ERRORS)
py("Policy.load device='tpu'", "mbmpo.Policy.load(run, device='tpu')", "tpu")
py("Policy.predict obs of another width", "pol.predict(np.zeros((3, 5), np.float32))", "obs", setup=POLICY)
py("Policy.predict obs float64", "pol.predict(np.zeros((3, 4)))", "obs", setup=POLICY)
py("Policy.predict NaN in obs", "pol.predict(np.full((2, 4), nan, np.float32))", "obs", setup=POLICY)
py("Policy.predict obs [2, 3, 4]", "pol.predict(np.zeros((2, 3, 4), np.float32))", "obs", setup=POLICY)
py("Policy.predict out read-only", "out = np.zeros((2, 1), np.float32); out.flags.writeable = False; "
   "pol.predict(np.zeros((2, 4), np.float32), out=out)", "out", setup=POLICY)
py("Policy.save into a missing folder", "pol.save(os.path.join(tmp, 'no', 'such', 'p.safetensors'))", "p.safetensors",
   setup=POLICY, exc=FILE_ERRORS)
MENV = "me = mbmpo.ModelEnv(ensemble(), TASK, 3); me.reset(np.zeros((3, 4), np.float32))"
py("ModelEnv batch=0", "mbmpo.ModelEnv(ensemble(), TASK, 0)", "batch")
py("ModelEnv task of other sizes", "mbmpo.ModelEnv(ensemble(), 'hopper', 3)", "hopper")
py("ModelEnv model_of_row beyond the models", "mbmpo.ModelEnv(ensemble(), TASK, 2, model_of_row=[0, 2])",
   "model_of_row")
py("ModelEnv.reset float64 states", "mbmpo.ModelEnv(ensemble(), TASK, 3).reset(np.zeros((3, 4)))", "start_obs")
py("ModelEnv.step NaN actions", "me.step(np.full((3, 1), nan, np.float32))", "actions", setup=MENV)
py("ModelEnv.step actions of another width", "me.step(np.zeros((3, 2), np.float32))", "actions", setup=MENV)
py("task_rewards unknown task", "mbmpo.task_rewards('pong', o, a, o)", "pong", setup=PREDICT)
py("Dataset.load a directory without checkpoints", "mbmpo.Dataset.load(tmp)", "{tmp}", exc=FILE_ERRORS)

# GaussianPolicy
py("GaussianPolicy obs_dim=0", "mbmpo.GaussianPolicy(0, 1)", "obs_dim")
py("GaussianPolicy act_dim=0", "mbmpo.GaussianPolicy(4, 0)", "act_dim")
py("GaussianPolicy hidden=[0]", "mbmpo.GaussianPolicy(4, 1, hidden=[0])", "hidden")
py("GaussianPolicy hidden=[2**31-1]", "mbmpo.GaussianPolicy(4, 1, hidden=[2**31 - 1]).initial_parameters()", "hidden")
py("initial_parameters init_std=0", "policy().initial_parameters(init_std=0.0)", "init_std")
py("initial_parameters init_std=nan", "policy().initial_parameters(init_std=nan)", "init_std")
py("initial_parameters init_std=10**400", "policy().initial_parameters(init_std=10**400)", "init_std must be finite",
   exc=("ValueError",))
py("initial_parameters seed=-1", "policy().initial_parameters(seed=-1)", "seed")

# imagined_rollout
RO = "e, p, theta, params, start = rollout_inputs()"
py("imagined_rollout NaN params", "params[1, 3] = nan; mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=5)",
   "params", setup=RO)
py("imagined_rollout NaN start_obs",
   "start[0, 1, 2] = nan; mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=5)", "start_obs", setup=RO)
py("imagined_rollout inf start_obs",
   "start[1, 0, 0] = inf; mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=5)", "start_obs", setup=RO)
py("imagined_rollout horizon=0", "mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=0)", "horizon", setup=RO)
py("imagined_rollout horizon=-1", "mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=-1)", "horizon", setup=RO)
py("imagined_rollout horizon=2**31-1", "mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=2**31 - 1)",
   "horizon", setup=RO)
py("imagined_rollout params wrong width",
   "mbmpo.imagined_rollout(e, TASK, p, np.zeros((2, p.parameter_count + 1), np.float32), start, horizon=5)", "params",
   setup=RO)
py("imagined_rollout params float64",
   "mbmpo.imagined_rollout(e, TASK, p, params.astype(np.float64), start, horizon=5)", "params", setup=RO)
py("imagined_rollout start_obs wrong obs width",
   "mbmpo.imagined_rollout(e, TASK, p, params, np.zeros((2, 3, 5), np.float32), horizon=5)", "start_obs", setup=RO)
py("imagined_rollout start_obs task count mismatch",
   "mbmpo.imagined_rollout(e, TASK, p, params, np.zeros((3, 3, 4), np.float32), horizon=5)", "start_obs", setup=RO)
py("imagined_rollout start_obs non-contiguous",
   "mbmpo.imagined_rollout(e, TASK, p, params, np.zeros((2, 4, 3), np.float32).transpose(0, 2, 1)[:, :3], horizon=5)",
   "start_obs", setup=RO)
py("imagined_rollout unknown task", "mbmpo.imagined_rollout(e, 'nope', p, params, start, horizon=5)", "nope", setup=RO)
py("imagined_rollout task of other sizes", "mbmpo.imagined_rollout(e, 'hopper', p, params, start, horizon=5)", "hopper",
   setup=RO)
py("imagined_rollout seed=-1", "mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=5, seed=-1)", "seed",
   setup=RO)

# advantages, inner step, meta-update
TR = "e, p, theta, params, start, t, a = trajectories()"
py("compute_advantages discount=2", "mbmpo.compute_advantages(t, discount=2.0)", "discount", setup=TR)
py("compute_advantages discount=nan", "mbmpo.compute_advantages(t, discount=nan)", "discount", setup=TR)
py("compute_advantages gae_lambda=-1", "mbmpo.compute_advantages(t, gae_lambda=-1.0)", "gae_lambda", setup=TR)
py("compute_advantages trajectories None", "mbmpo.compute_advantages(None)", "trajectories", setup=TR)
py("inner_step inner_lr=nan", "mbmpo.inner_step(p, theta, t, a, inner_lr=nan)", "inner_lr", setup=TR)
py("inner_step theta wrong shape", "mbmpo.inner_step(p, theta[:-1].copy(), t, a, inner_lr=0.01)", "theta", setup=TR)
py("inner_step NaN theta", "theta[0] = nan; mbmpo.inner_step(p, theta, t, a, inner_lr=0.01)", "theta", setup=TR)
py("inner_step advantages of other trajectories",
   "t2 = mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=5); mbmpo.inner_step(p, theta, t2, a, inner_lr=0.01)",
   "advantages", setup=TR)
MU = TR + "; ad = mbmpo.inner_step(p, theta, t, a, inner_lr=0.01); " \
          "post = mbmpo.imagined_rollout(e, TASK, p, ad, start, horizon=5, draw=1); pa = mbmpo.compute_advantages(post)"
py("meta_update max_kl=-1", "mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01, max_kl=-1.0)", "max_kl",
   setup=MU)
py("meta_update max_kl=nan", "mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01, max_kl=nan)", "max_kl",
   setup=MU)
py("meta_update cg_iterations=0", "mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01, cg_iterations=0)",
   "cg_iterations", setup=MU)
py("meta_update damping=nan", "mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01, damping=nan)", "damping",
   setup=MU)
py("meta_update inner_lr=inf", "mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=inf)", "inner_lr", setup=MU)
py("meta_update theta read-only",
   "theta.setflags(write=False); mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01)", "theta", setup=MU)
py("meta_update NaN adapted", "ad[0, 0] = nan; mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01)",
   "adapted", setup=MU)
py("meta_update adapted wrong shape",
   "mbmpo.meta_update(p, theta, ad[:1].copy(), t, a, post, pa, inner_lr=0.01)", "adapted", setup=MU)

# train and eval
NEW = "assert not os.path.exists(new)"
py("train preset='nope'", "mbmpo.train(new, preset='nope', **tiny())", "preset", setup=NEW)
py("train models='3'", "mbmpo.train(new, **tiny(models='3'))", "models", setup=NEW)
py("train models=0", "mbmpo.train(new, **tiny(models=0))", "models", setup=NEW)
py("train models=2**31-1", "mbmpo.train(new, **tiny(models=2**31 - 1))", "models", setup=NEW)
py("train models=2**40", "mbmpo.train(new, **tiny(models=2**40))", "models", setup=NEW)
py("train iterations=True", "mbmpo.train(new, **tiny(iterations=True))", "iterations", setup=NEW)
py("train iterations=1.5", "mbmpo.train(new, **tiny(iterations=1.5))", "iterations", setup=NEW)
py("train first_order=2", "mbmpo.train(new, **tiny(first_order=2))", "first_order", setup=NEW)
py("train inner_lr=nan", "mbmpo.train(new, **tiny(inner_lr=nan))", "inner_lr", setup=NEW)
py("train discount=2", "mbmpo.train(new, **tiny(discount=2.0))", "discount", setup=NEW)
py("train model_hidden=[64, -1]", "mbmpo.train(new, **tiny(model_hidden=[64, -1]))", "model_hidden", setup=NEW)
py("train model_hidden='64,abc'", "mbmpo.train(new, **tiny(model_hidden='64,abc'))", "model_hidden", setup=NEW)
py("train model_hidden=[2**31-1]", "mbmpo.train(new, **tiny(model_hidden=[2**31 - 1]))", "model_hidden", setup=NEW)
py("train dataset_capacity=1", "mbmpo.train(new, **tiny(dataset_capacity=1))", "dataset_capacity", setup=NEW)
py("train seed=-1", "mbmpo.train(new, **tiny(seed=-1))", "seed", setup=NEW)
py("train seed='x'", "mbmpo.train(new, **tiny(seed='x'))", "seed", setup=NEW)
py("train env='nope'", "mbmpo.train(new, **tiny(env='nope'))", "nope", setup=NEW)
py("train device='gpu0'", "mbmpo.train(new, **tiny(device='gpu0'))", "device", setup=NEW)
py("train unknown setting", "mbmpo.train(new, **tiny(bogus=1))", "bogus", setup=NEW)
py("train on_iteration not callable", "mbmpo.train(new, on_iteration='x', **tiny())", "on_iteration", setup=NEW)
py("train resume of a missing directory", "mbmpo.train(new, resume=True)", "new-run", setup=NEW)
py("train over an existing run without resume", "mbmpo.train(run, **tiny())", "run-copy")
py("eval episodes=0", "mbmpo.eval(run, episodes=0)", "episodes")
py("eval episodes=-1", "mbmpo.eval(run, episodes=-1)", "episodes")
py("eval episodes='3'", "mbmpo.eval(run, episodes='3')", "episodes")
py("eval threads=0", "mbmpo.eval(run, episodes=1, threads=0)", "threads")
py("eval seed=-1", "mbmpo.eval(run, episodes=1, seed=-1)", "seed")
py("eval device='gpu0'", "mbmpo.eval(run, episodes=1, device='gpu0')", "device")
py("eval a missing path", "mbmpo.eval(os.path.join(tmp, 'nothing-here'))", "nothing-here", exc=FILE_ERRORS)
py("eval progress.csv", "mbmpo.eval(os.path.join(run, 'progress.csv'), episodes=1)", "progress.csv")


# Every kind of argument given a value of the wrong type or outside its range: each is named, never
# nanobind's "incompatible function arguments" (python/src/arguments.hpp).
WRONG_TYPES = [
    ("Dataset obs_dim=None", "mbmpo.Dataset(None, 1)", "obs_dim", ""),
    ("Dataset act_dim=1.5", "mbmpo.Dataset(4, 1.5)", "act_dim", ""),
    ("Dataset capacity=True", "mbmpo.Dataset(4, 1, capacity=True)", "capacity", ""),
    ("Dataset.add done None", "d.add(o, a, n, r, None)", "done", "d = dataset(); o, a, n, r, f = episode(10)"),
    ("DynamicsEnsemble models='5'", "mbmpo.DynamicsEnsemble(4, 1, models='5', device='cpu')", "models", ""),
    ("DynamicsEnsemble activation=3", "mbmpo.DynamicsEnsemble(4, 1, activation=3, device='cpu')", "activation", ""),
    ("DynamicsEnsemble device=None", "mbmpo.DynamicsEnsemble(4, 1, hidden=[8], device=None)", "device", ""),
    ("DynamicsEnsemble hidden=[8, 'x']", "mbmpo.DynamicsEnsemble(4, 1, hidden=[8, 'x'], device='cpu')", "hidden[1]", ""),
    ("DynamicsEnsemble seed=2**64", "mbmpo.DynamicsEnsemble(4, 1, hidden=[8], seed=2**64, device='cpu')", "seed", ""),
    ("fit learning_rate='x'", "m.fit(d, learning_rate='x')", "learning_rate", FIT),
    ("fit batch_size=1.5", "m.fit(d, batch_size=1.5)", "batch_size", FIT),
    ("fit early_stopping='yes'", "m.fit(d, early_stopping='yes')", "early_stopping", FIT),
    ("fit max_epochs=None", "m.fit(d, max_epochs=None)", "max_epochs", FIT),
    ("predict obs None", "m.predict(None, a)", "obs", PREDICT),
    ("predict model_of_row 'abc'", "m.predict(o, a, model_of_row='abc')", "model_of_row", PREDICT),
    ("GaussianPolicy obs_dim='4'", "mbmpo.GaussianPolicy('4', 1)", "obs_dim", ""),
    ("GaussianPolicy hidden=5", "mbmpo.GaussianPolicy(4, 1, hidden=5)", "hidden", ""),
    ("initial_parameters init_std='1'", "policy().initial_parameters(init_std='1')", "init_std", ""),
    ("imagined_rollout ensemble None", "mbmpo.imagined_rollout(None, TASK, p, params, start, horizon=5)", "ensemble", RO),
    ("imagined_rollout task=3", "mbmpo.imagined_rollout(e, 3, p, params, start, horizon=5)", "task", RO),
    ("imagined_rollout policy a string", "mbmpo.imagined_rollout(e, TASK, 'p', params, start, horizon=5)", "policy", RO),
    ("imagined_rollout horizon='5'", "mbmpo.imagined_rollout(e, TASK, p, params, start, horizon='5')", "horizon", RO),
    ("imagined_rollout draw=-1", "mbmpo.imagined_rollout(e, TASK, p, params, start, horizon=5, draw=-1)", "draw", RO),
    ("imagined_rollout params a string", "mbmpo.imagined_rollout(e, TASK, p, 'x', start, horizon=5)", "params", RO),
    ("compute_advantages discount='x'", "mbmpo.compute_advantages(t, discount='x')", "discount", TR),
    ("compute_advantages normalize=2", "mbmpo.compute_advantages(t, normalize=2)", "normalize", TR),
    ("inner_step policy None", "mbmpo.inner_step(None, theta, t, a, inner_lr=0.01)", "policy", TR),
    ("inner_step advantages None", "mbmpo.inner_step(p, theta, t, None, inner_lr=0.01)", "advantages", TR),
    ("inner_step inner_lr None", "mbmpo.inner_step(p, theta, t, a, inner_lr=None)", "inner_lr", TR),
    ("inner_step theta a list of str", "mbmpo.inner_step(p, ['x'], t, a, inner_lr=0.01)", "theta", TR),
    ("meta_update pre None", "mbmpo.meta_update(p, theta, ad, None, a, post, pa, inner_lr=0.01)", "pre", MU),
    ("meta_update post_advantages of pre", "mbmpo.meta_update(p, theta, ad, t, a, post, t, inner_lr=0.01)",
     "post_advantages", MU),
    ("meta_update cg_iterations=1.5", "mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01, cg_iterations=1.5)",
     "cg_iterations", MU),
    ("meta_update first_order='no'", "mbmpo.meta_update(p, theta, ad, t, a, post, pa, inner_lr=0.01, first_order='no')",
     "first_order", MU),
    ("meta_update adapted None", "mbmpo.meta_update(p, theta, None, t, a, post, pa, inner_lr=0.01)", "adapted", MU),
    ("eval adapt=1", "mbmpo.eval(run, episodes=1, adapt=1)", "adapt", ""),
    ("eval threads='2'", "mbmpo.eval(run, episodes=1, threads='2')", "threads", ""),
    ("eval device=None", "mbmpo.eval(run, episodes=1, device=None)", "device", ""),
]
for name, code, needle, setup in WRONG_TYPES:
    py(name, code, needle, setup=setup)


# Cases that fail today, and why (a strict xfail each: once fixed, it fails until it leaves the list).
KNOWN_GAPS: dict = {}


def _check_table() -> None:
    names = [c.name for c in CASES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"case names must be unique: {duplicates}"
    for c in CASES:
        assert c.breaks in BREAKS, c
        assert c.expect in ("error", "fallback", "ends", "raises"), c
        assert (c.code is not None) == (c.breaks == "python") == (c.expect == "raises"), c
        assert c.breaks == "python" or c.args is not None, c
    assert set(KNOWN_GAPS) <= set(names), set(KNOWN_GAPS) - set(names)


_check_table()
