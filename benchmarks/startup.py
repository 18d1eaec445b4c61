"""Start-up: what the `open`/`watch` path imports before its first paint, beside Textual alone.

    uv run python benchmarks/startup.py            # 15 runs per figure
    uv run python benchmarks/startup.py --quick    # 5

Each figure is the median wall time of a fresh interpreter that imports one module and exits:
`eventtui.tui.launch` (everything `eventtui open` and `eventtui watch` load before the app's first
paint) against `textual.app` (the floor: no TUI on Textual starts faster), and the CLI's entry
module (`eventtui --help` loads only this). Runs alternate A B A B so both see the same machine.

Both are measured twice: as a plain install runs them where `PYTHONDONTWRITEBYTECODE=1` is set (as
on these machines and in many Docker images: every launch compiles every module again), and with
bytecode compiled beforehand (what `uv sync --compile-bytecode` gives). The compiled run writes
its bytecode under a temporary `-X pycache_prefix`, so the virtual environment is left as it was.
The heavy modules the path must not load (jsonschema, sqlite_utils, the demo's websocket client)
are checked and listed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "open/watch path (eventtui.tui.launch)": "eventtui.tui.launch",
    "CLI entry (eventtui.cli)": "eventtui.cli",
}
BASELINE = "textual.app"
# Loaded only when needed: a plan with schemas, a migration, the demo, the anomalies screen, a
# writer (see their modules).
MUST_NOT_LOAD = (
    "jsonschema",
    "sqlite_utils",
    "eventtui.demo",
    "websockets",
    "eventtui.tui.screens.anomalies",
    "multiprocessing",
)


def run(module: str, env: dict[str, str], prefix: str | None) -> float:
    args = [sys.executable]
    if prefix is not None:
        args += ["-X", f"pycache_prefix={prefix}"]
    start = time.perf_counter()
    subprocess.run([*args, "-c", f"import {module}"], env=env, check=True, cwd=ROOT)
    return time.perf_counter() - start


def median_pair(
    module: str, runs: int, env: dict[str, str], prefix: str | None
) -> tuple[float, float]:
    ours: list[float] = []
    base: list[float] = []
    for _ in range(runs):
        ours.append(run(module, env, prefix))
        base.append(run(BASELINE, env, prefix))
    return statistics.median(ours), statistics.median(base)


def loaded_heavy(module: str, env: dict[str, str]) -> list[str]:
    code = (
        f"import sys, {module}; print(' '.join(m for m in {MUST_NOT_LOAD!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    )
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per figure instead of 15")
    runs = 5 if parser.parse_args().quick else 15
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    print(
        f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}, {runs} runs each"
    )
    with tempfile.TemporaryDirectory() as prefix:
        # Compile what the compiled runs import, once, into the temporary prefix.
        subprocess.run(
            [
                sys.executable,
                "-X",
                f"pycache_prefix={prefix}",
                "-m",
                "compileall",
                "-q",
                *(p for p in sys.path[1:] if Path(p).is_dir()),
                str(ROOT / "eventtui"),
            ],
            env=env,
            check=False,
            capture_output=True,
        )
        print(f"{'':42} {'no bytecode':>24} {'bytecode compiled':>24}")
        for label, module in TARGETS.items():
            cold = median_pair(module, runs, env, None)
            warm = median_pair(module, runs, env, prefix)
            print(
                f"{label:42} {cold[0] * 1000:6.0f} ms ({cold[0] / cold[1]:.2f}x) "
                f"{warm[0] * 1000:8.0f} ms ({warm[0] / warm[1]:.2f}x)"
            )
        cold_base = median_pair(BASELINE, runs, env, None)[0]
        warm_base = median_pair(BASELINE, runs, env, prefix)[0]
        print(
            f"{'baseline: textual.app alone':42} {cold_base * 1000:6.0f} ms {warm_base * 1000:16.0f} ms"
        )
    for label, module in TARGETS.items():
        heavy = loaded_heavy(module, env)
        print(
            f"{label} loads: {', '.join(heavy) if heavy else 'none of ' + ', '.join(MUST_NOT_LOAD)}"
        )


if __name__ == "__main__":
    main()
