"""``python -m bench`` (``make bench``): the speed figures the README quotes.

Each benchmark runs the real command in a subprocess and records wall time and the child's peak
resident memory; results go to ``build/bench/results.json`` (under the build root) and a
Markdown table on stdout.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hw.arch.atomic import write_atomic
from hw.arch.config import PRESETS
from sim.flow.paths import build_root, config_key, model_key
from hw.arch.errors import ArgumentParser

SIM_ALEX = [sys.executable, "-m", "sim", "--model", "alexnet_fc", "--config", "eie64"]
BENCHES = {
    # --recompile: python -m compiler reuses an up-to-date compile
    "compile_alexnet_fc": [sys.executable, "-m", "compiler", "--model", "alexnet_fc",
                           "--config", "eie64", "--recompile"],
    "compile_vgg_fc": [sys.executable, "-m", "compiler", "--model", "vgg_fc",
                       "--config", "eie64", "--recompile"],
    "compile_ese_lstm": [sys.executable, "-m", "compiler", "--model", "ese_lstm",
                         "--config", "ese", "--recompile"],
    "cycles_ese_lstm": [sys.executable, "-m", "sim.studies.cycles", "--model", "ese_lstm",
                        "--config", "ese"],
    "sim_ese_lstm_warm": [sys.executable, "-m", "sim", "--model", "ese_lstm", "--config", "ese"],
    "verilog_eie64": [sys.executable, "-m", "hw", "--config", "eie64"],
    # cold: recompile, and Verilog + Verilator build into an empty build directory
    "sim_alexnet_fc_cold": SIM_ALEX + ["--recompile"],
    "sim_alexnet_fc_warm": SIM_ALEX,
    "sim_vgg_fc_warm": [sys.executable, "-m", "sim", "--model", "vgg_fc", "--config", "eie64"],
    "sim_neuraltalk_warm": [sys.executable, "-m", "sim", "--model", "neuraltalk",
                            "--config", "eie64"],
    # 359 images through eie64: a long run, the steadiest compute-speed figure
    "sim_mlp_digits_warm": [sys.executable, "-m", "sim", "--model", "mlp_digits",
                            "--config", "eie64"],
    # the regression farm's target: 1000 cases on this machine's local Dask cluster
    "regress_1000": [sys.executable, "-m", "sim.regress", "--n", "1000", "--seed", "0",
                     "--pool", "20"],
}
#: benchmarks that run only when named (``python -m bench regress_1000``: about 40 minutes)
ON_REQUEST = {"regress_1000"}
#: benchmarks that need an empty Verilator build cache (EIEGEN_BUILD_DIR -> a new directory)
COLD = {"sim_alexnet_fc_cold"}
#: benchmarks timed warm: the command runs once untimed first, so every cache is filled
WARM = {"sim_alexnet_fc_warm", "sim_vgg_fc_warm", "sim_neuraltalk_warm", "sim_ese_lstm_warm",
        "sim_mlp_digits_warm"}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def run_one(name: str, cmd: list[str]) -> dict:
    env = dict(os.environ)
    cold_dir = None
    if name in COLD:
        cold_dir = tempfile.mkdtemp(prefix="eiegen-cold-")
        env["EIEGEN_BUILD_DIR"] = cold_dir
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf, text=True,
                                env=env)
        # wait4 gives this child's own rusage, so the peak is per benchmark
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read()
    r = {"name": name, "command": " ".join(cmd[2:] if cmd[0] == sys.executable else cmd),
         "wall_s": round(wall, 2), "exit_code": os.waitstatus_to_exitcode(status),
         "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
         "stderr_tail": err.strip().splitlines()[-3:]}
    if name.startswith("sim_") and r["exit_code"] == 0:
        # the simulator's own figures for the same run, from the build root it wrote into
        root = Path(cold_dir) if cold_dir else build_root()
        model = cmd[cmd.index("--model") + 1]
        config = cmd[cmd.index("--config") + 1] if "--config" in cmd else "eie64"
        rep = json.loads((root / model_key(model) / config_key(PRESETS[config])
                          / "report.json").read_text())
        cycles = rep["totals"]["cycles"]  # an LSTM's: one total per sequence
        r["simulated_cycles"] = sum(cycles) if isinstance(cycles, list) else cycles
        r["rtl_run_s"] = rep["sim"]["run_s"]
        r["simulated_cycles_per_s"] = round(rep["sim"]["simulated_cycles_per_s"])
        # the simulator process's time split (sim.studies.simulate.sim_summary): the array
        # computing, host I/O, start-up
        for k in ("compute_cycles", "compute_s", "io_cycles", "io_s", "startup_s"):
            if k in rep["sim"]:
                r[k] = rep["sim"][k]
        if "compute_cycles_per_s" in rep["sim"]:
            r["compute_cycles_per_s"] = round(rep["sim"]["compute_cycles_per_s"])
    if cold_dir:
        shutil.rmtree(cold_dir, ignore_errors=True)
    return r


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {list(BENCHES)}")
    args = p.parse_args(argv)
    names = args.names or [n for n in BENCHES if n not in ON_REQUEST]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"bench: error: unknown benchmark(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    results = []
    for n in names:
        print(f"[bench] {n} ...", flush=True)
        if n in WARM:
            print(f"[bench] {n}: warming up (untimed run)", flush=True)
            subprocess.run(BENCHES[n], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = run_one(n, BENCHES[n])
        results.append(r)
        print(f"[bench] {n}: {r['wall_s']} s wall, peak {r['peak_rss_mib']} MiB, "
              f"exit {r['exit_code']}", flush=True)
    out = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "results": results}
    d = build_root() / "bench"
    d.mkdir(parents=True, exist_ok=True)
    write_atomic(d / "results.json", json.dumps(out, indent=1))
    print(f"\nMachine: {out['machine']}\n")
    print("| benchmark | command | wall (s) | peak RSS (MiB) | simulated cycles/s | "
          "compute cycles/s | host I/O cycles (s) | start-up (s) | exit |\n"
          "|---|---|---|---|---|---|---|---|---|")
    def cell(r, key, fmt="{:,}"):
        return fmt.format(r[key]) if key in r else ""

    for r in results:
        io = f"{r['io_cycles']:,} ({r['io_s']:.2f})" if "io_cycles" in r else ""
        print(f"| {r['name']} | `{r['command']}` | {r['wall_s']} | {r['peak_rss_mib']} | "
              f"{cell(r, 'simulated_cycles_per_s')} | {cell(r, 'compute_cycles_per_s')} | "
              f"{io} | {cell(r, 'startup_s', '{:.2f}')} | {r['exit_code']} |")
    return 1 if any(r["exit_code"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
