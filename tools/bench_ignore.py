"""`.jvsignore` benchmark (issue 8): snapshot and restore of a Unity-shaped project on
JuiceFS, with the Unity template's `.jvsignore` and without one.

Run with `tools/bench ignore [--library-files N] [--repeat N]`. It builds a JuiceFS
volume (sqlite3 metadata, file storage; removed afterwards) and, in two repositories,
the same project: Assets/ (1,000 assets of 64 KiB, each with its .meta file),
ProjectSettings/, Packages/, and what Unity rebuilds — Library/ (N small files, 20,000 by
default, in 200 directories), Temp/ and Logs/. It times, with jvs's own start-up:
the first snapshot (every byte hashed), a snapshot after one asset changed (stat cache
warm), and a restore to the snapshot before; and, as the engine's two possible
strategies, a bare `juicefs clone -p` of the whole project (clone everything, then drop
the ignored part) against clones of only the kept top-level entries (what jvs does).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import print_table  # noqa: E402  (a sibling script)
from bench_engines import JUICEFS, juicefs_volume  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JVS = [sys.executable, "-m", "jvs"]
TEMPLATE = (ROOT / "jvs" / "templates" / "unity.jvsignore").read_text()


def make_project(main: Path, library_files: int) -> None:
    asset = os.urandom(64 * 1024)
    for i in range(1000):
        d = main / "Assets" / f"Group{i // 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"asset{i:04d}.png").write_bytes(asset[:-8] + i.to_bytes(8, "little"))
        (d / f"asset{i:04d}.png.meta").write_text(f"guid: {i:032x}\n")
    (main / "ProjectSettings").mkdir()
    for i in range(30):
        (main / "ProjectSettings" / f"Setting{i}.asset").write_text(f"setting {i}\n" * 20)
    (main / "Packages").mkdir()
    (main / "Packages" / "manifest.json").write_text('{"dependencies": {}}\n')
    small = os.urandom(4096)
    for i in range(library_files):
        d = main / "Library" / "Artifacts" / f"{i % 200:02x}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"artifact{i:06d}").write_bytes(small[:-8] + i.to_bytes(8, "little"))
    for sub, n in (("Temp", 300), ("Logs", 20)):
        (main / sub).mkdir()
        for i in range(n):
            (main / sub / f"f{i}").write_bytes(small)


def jvs(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*JVS, *args], cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"jvs {' '.join(args)} failed: {proc.stderr}")
    return took


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def wait_for_background(repo: Path) -> None:
    """A restore seeds the stat cache and deletes the replaced content in a detached
    child after it answers; wait for it, so each timed command starts from the same
    state (the trash is emptied last)."""
    trash = repo / ".jvs" / "restore" / "@trash"
    while trash.is_dir() and os.listdir(trash):
        time.sleep(0.2)


def measure(base: Path, name: str, library_files: int, ignore: bool,
            repeat: int) -> dict[str, float]:
    subprocess.run([*JVS, "init", name], cwd=base, check=True, capture_output=True)
    main = base / name / "main"
    if ignore:
        (main / ".jvsignore").write_text(TEMPLATE)
    make_project(main, library_files)
    out = {"first snapshot": jvs("snapshot", "first", cwd=main)}
    changed, restored = [], []
    for i in range(repeat):
        (main / "Assets" / "Group00" / "asset0000.png").write_bytes(os.urandom(64 * 1024))
        changed.append(jvs("snapshot", f"change {i}", cwd=main))
    for _ in range(repeat):
        restored.append(jvs("restore", "HEAD~1", cwd=main))
        wait_for_background(base / name)
        jvs("restore", "HEAD", cwd=main)  # back to the newest (nothing unsaved)
        wait_for_background(base / name)
    out["snapshot, one asset changed"] = statistics.median(changed)
    out["restore to the one before"] = statistics.median(restored)
    kept = [n for n in sorted(os.listdir(main)) if n not in ("Library", "Temp", "Logs")]
    whole = timed([JUICEFS, "clone", "-p", str(main), str(base / f"{name}-whole")])
    start = time.perf_counter()
    (base / f"{name}-kept").mkdir()
    procs = [subprocess.Popen([JUICEFS, "clone", "-p", str(main / n),
                               str(base / f"{name}-kept" / n)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for n in kept]
    for p in procs:
        p.wait()
    out["juicefs clone -p, whole project"] = whole
    out["juicefs clone -p, kept only"] = time.perf_counter() - start
    return out


def main() -> int:
    # Start-up is part of what is measured: jvs compiles its bytecode once, as an
    # installed jvs has it (some environments set PYTHONDONTWRITEBYTECODE).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library-files", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp, \
            juicefs_volume(Path(tmp)) as vol:
        if vol is None:
            return 1
        without = measure(vol.path, "plain", args.library_files, False, args.repeat)
        with_ = measure(vol.path, "unity", args.library_files, True, args.repeat)
    print(f"Unity-shaped project on JuiceFS: 1,000 assets x 64 KiB (+ .meta), "
          f"Library/ {args.library_files:,} files; median of {args.repeat}")
    rows = []
    for what in ("first snapshot", "snapshot, one asset changed", "restore to the one before"):
        rows.append((f"{what}, no .jvsignore", without[what], ""))
        rows.append((f"{what}, unity .jvsignore", with_[what],
                     f"without/with = {without[what] / with_[what]:.1f}"))
    whole, kept = with_["juicefs clone -p, whole project"], with_["juicefs clone -p, kept only"]
    rows.append(("juicefs clone -p of the whole project", whole, ""))
    rows.append(("juicefs clone -p of the kept entries only", kept,
                 f"whole/kept = {whole / kept:.1f}"))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_env import print_environment

    print_environment()
    sys.exit(main())
