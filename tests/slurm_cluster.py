"""A one-node SLURM cluster on localhost for the SLURM test, and the executor plugin kept out of the main venv.

Two separate concerns:

* **The executor plugin.** Once ``snakemake-executor-plugin-slurm`` is importable, *every* snakemake call asks SLURM
  for its configuration (``scontrol show config``), and with a ``slurm.conf`` whose controller is down each call
  waits about 10 s. So the plugin is never installed into the main ``.venv``: :func:`ensure_plugin` puts it with
  ``pip install --no-deps --target .venv/slurm-plugin`` into a folder that is on no ``sys.path`` (its other
  dependencies — numpy, pandas, pyyaml, throttler, the snakemake interfaces — already come with snakemake), and only
  commands run with :func:`plugin_env` (which puts that folder on ``PYTHONPATH``) see it. The SLURM jobs inherit that
  environment (``sbatch --export=ALL``).
* **The cluster.** :class:`Cluster` writes ``/etc/slurm/slurm.conf`` and ``gres.conf`` (one node, one fake GPU
  ``gpu:fake:1`` backed by ``/dev/null``), starts ``munged``, ``slurmctld`` and ``slurmd``, waits for the node to be
  idle, and :meth:`Cluster.stop` undoes all of it: cancels jobs, stops the daemons it started (by pid, checking the
  process name), deletes their pid files (a stale ``/run/slurmctld.pid`` breaks a later package purge) and removes
  the configuration it wrote, so that later snakemake calls on the machine are not slowed down. It needs root and
  Debian's packages (:func:`install_packages`).

Also usable by hand (as root): ``python tests/slurm_cluster.py {plugin,install,start,status,stop}``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# --- executor plugin ----------------------------------------------------------------------------------------------

# Inside the venv's folder (ignored by git and ruff, rebuilt with the venv whose packages it relies on) but not on its
# sys.path: no snakemake call sees it unless PYTHONPATH names it.
PLUGIN_DIR = Path(sys.prefix) / "slurm-plugin" if sys.prefix != sys.base_prefix else REPO / ".venv-slurm"
# Exact versions: the test checks the sbatch arguments these versions generate. The jobstep plugin runs inside
# each SLURM job. Everything else they need is already in the main venv (snakemake's own dependencies).
PLUGIN_PACKAGES = ("snakemake-executor-plugin-slurm==2.8.0", "snakemake-executor-plugin-slurm-jobstep==0.6.1")
_PLUGIN_STAMP = ".installed"


class UnavailableError(RuntimeError):
    """The plugin or the cluster cannot be set up here; the message says why (a test skips with it)."""


def ensure_plugin(python: str = sys.executable, target: Path = PLUGIN_DIR, timeout: float = 300) -> Path:
    """Install the SLURM executor plugin into ``target`` (not into the venv of ``python``) unless it is there."""
    wanted = "\n".join(PLUGIN_PACKAGES) + "\n"
    stamp = target / _PLUGIN_STAMP
    if stamp.is_file() and stamp.read_text() == wanted:
        return target
    # Install beside the target and rename into place, so a concurrent or killed install never leaves half a folder.
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    command += ["--target", str(staging), *PLUGIN_PACKAGES]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnavailableError(f"cannot install the SLURM executor plugin: {error}") from error
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnavailableError(f"cannot install the SLURM executor plugin: {result.stderr.strip()[-1500:]}")
    check = subprocess.run(
        [python, "-c", "import snakemake_executor_plugin_slurm, snakemake_executor_plugin_slurm_jobstep"],
        capture_output=True,
        text=True,
        env=plugin_env(target=staging),
        timeout=120,
    )
    if check.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnavailableError(f"the SLURM executor plugin does not import: {check.stderr.strip()[-1500:]}")
    (staging / _PLUGIN_STAMP).write_text(wanted)
    shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:  # another process renamed its copy first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def plugin_env(target: Path = PLUGIN_DIR, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment in which snakemake sees the plugin: ``target`` first on ``PYTHONPATH``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    return env


# --- cluster --------------------------------------------------------------------------------------------------------

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
CONF_DIR = Path("/etc/slurm")
SLURM_CONF = CONF_DIR / "slurm.conf"
GRES_CONF = CONF_DIR / "gres.conf"
MARKER = "# Written by seldflow tests/slurm_cluster.py for a throw-away one-node test cluster; removed by stop()."
CTLD_SPOOL = Path("/var/spool/slurmctld")
SLURMD_SPOOL = Path("/var/spool/slurmd")
LOG_DIR = Path("/var/log/slurm")
MUNGE_RUN = Path("/run/munge")
# Daemon name -> pid file (slurmctld and slurmd: the paths slurm.conf below sets; munged: its compiled-in default).
PID_FILES = {
    "slurmd": Path("/run/slurmd.pid"),
    "slurmctld": Path("/run/slurmctld.pid"),
    "munged": MUNGE_RUN / "munged.pid",
}
LOCK_FILE = Path("/run/seldflow-slurm-test.lock")
STARTED_FILE = Path("/run/seldflow-slurm-test.started")  # daemons started, one name a line (for a later `stop`)
PARTITION = "debug"  # the partition profiles/slurm/config.yaml submits to
GPU_TYPE = "fake"  # the gpu_model profiles/slurm/config.yaml asks for


def unavailable_reason() -> str | None:
    """Why this machine cannot run the cluster (None when it can): root and Debian's package tools are needed."""
    if not sys.platform.startswith("linux"):
        return "a local SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return "installing and starting a local SLURM cluster needs root"
    if not (shutil.which("apt-get") and shutil.which("dpkg-query")):
        return "apt-get/dpkg are not available to install slurmctld, slurmd, slurm-client and munge"
    return None


def _missing_packages() -> list[str]:
    missing = []
    for package in PACKAGES:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0 or "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def install_packages(timeout: float = 240) -> list[str]:
    """``apt-get install`` what is missing of :data:`PACKAGES` (``apt-get update`` only when that fails first).

    Returns the packages that were installed (empty when all were there).
    """
    missing = _missing_packages()
    if not missing:
        return []
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    deadline = time.monotonic() + timeout
    result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        # A fresh machine's package lists may be missing or stale.
        subprocess.run(
            ["apt-get", "update", "-q"], capture_output=True, text=True, env=env, timeout=deadline - time.monotonic()
        )
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=deadline - time.monotonic())
    still_missing = _missing_packages()
    if result.returncode != 0 or still_missing:
        raise RuntimeError(f"apt-get install {' '.join(missing)} failed:\n{result.stdout[-2000:]}{result.stderr}")
    return missing


def _alive(pid: int, name: str) -> bool:
    """Whether ``pid`` is a live process whose executable name is exactly ``name``."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return comm == name and state != "Z"


def _pid_from_file(name: str) -> int | None:
    try:
        pid = int(PID_FILES[name].read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid, name) else None


def _pids_named(name: str) -> list[int]:
    return [
        int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit() and _alive(int(entry.name), name)
    ]


def _terminate(pid: int, name: str, timeout: float = 10) -> None:
    """SIGTERM ``pid`` (only while it is still the process ``name``), then SIGKILL after ``timeout`` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        if not _alive(pid, name):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid, name):
            time.sleep(0.1)


def _run(command: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def slurm_conf(host: str, cpus: int, memory_mb: int) -> str:
    """The configuration of a one-node cluster: controller and node on 127.0.0.1, one fake GPU, no accounting."""
    return f"""{MARKER}
ClusterName=seldflowtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation={CTLD_SPOOL}
SlurmdSpoolDir={SLURMD_SPOOL}
SlurmctldPidFile={PID_FILES["slurmctld"]}
SlurmdPidFile={PID_FILES["slurmd"]}
SlurmctldLogFile={LOG_DIR}/slurmctld.log
SlurmdLogFile={LOG_DIR}/slurmd.log
# No cgroups in containers: track processes through /proc, no task plugin.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
# Trust the CPU count below even where it exceeds the machine's (see Cluster.slots).
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# No slurmdbd: sacct does not work, so the profile polls with squeue, which sees a finished job for MinJobAge s.
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=300
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{GPU_TYPE}:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """A one-node SLURM cluster on localhost; :meth:`stop` leaves the machine as it found it (packages aside)."""

    def __init__(self) -> None:
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1  # the most CPUs one job should ask for (pass as --cores)
        # CPU slots of the node: at least 4, so that the short 1-2-thread jobs of one DAG level run side by side on a
        # 2-core machine. Their time goes mostly to job start-up and the plugin's status polling, not to the CPU.
        self.slots = max(4, self.cpus)
        self.started: list[str] = []  # daemons this object started, in start order
        self._munged_was_running = _pid_from_file("munged") is not None or bool(_pids_named("munged"))
        self._lock: int | None = None

    # Lifecycle ------------------------------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90) -> None:
        """Write the configuration, start munged, slurmctld and slurmd, and wait until the node is idle."""
        self._lock = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(self._lock)
            self._lock = None
            raise UnavailableError("another process is running the local SLURM test cluster") from error
        for path in (SLURM_CONF, GRES_CONF):
            if path.exists() and MARKER not in path.read_text():
                raise UnavailableError(
                    f"{path} exists and was not written by this test: not touching a real SLURM setup"
                )
        # Leftovers of a killed earlier run (its config carries our marker): stop its daemons first.
        for name in ("slurmd", "slurmctld"):
            for pid in _pids_named(name):
                if not SLURM_CONF.exists():
                    raise UnavailableError(
                        f"{name} (pid {pid}) is running with a configuration this test did not write"
                    )
                _terminate(pid, name)
            PID_FILES[name].unlink(missing_ok=True)

        for path, owner in ((CTLD_SPOOL, "slurm"), (LOG_DIR, "slurm"), (SLURMD_SPOOL, "root"), (MUNGE_RUN, "munge")):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, owner, owner)
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(slurm_conf(self.host, self.slots, max(1024, _memory_mb() - 2048)))
        GRES_CONF.write_text(f"{MARKER}\nNodeName={self.host} Name=gpu Type={GPU_TYPE} File=/dev/null\n")

        if not _pids_named("munged"):
            self._daemon("munged", ["munged", "--force"])
        elif not self._munged_was_running:
            self._note_started("munged")  # started by the munge package's postinst during install_packages()
        # -c: start from a clean state, forgetting jobs of an earlier run.
        self._daemon("slurmctld", ["slurmctld", "-c"])
        self._daemon("slurmd", ["slurmd"])
        self.wait_idle(timeout)

    def _daemon(self, name: str, command: list[str]) -> None:
        result = _run(command)  # each daemonizes: returns once it has forked
        self._note_started(name)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _pid_from_file(name) is None:
            time.sleep(0.1)
        if result.returncode != 0 or _pid_from_file(name) is None:
            raise RuntimeError(
                f"{' '.join(command)} did not start (rc {result.returncode}): {result.stderr}\n{self.logs()}"
            )

    def _note_started(self, name: str) -> None:
        self.started.append(name)
        STARTED_FILE.write_text("".join(f"{started}\n" for started in self.started))

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            result = _run(["sinfo", "--noheader", "--partition", PARTITION, "--format=%T"], timeout=15)
            state = result.stdout.strip()
            if result.returncode == 0 and state.rstrip("*") == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node is not idle after {timeout:.0f} s (sinfo: {state!r})\n{self.logs()}")

    def stop(self) -> None:
        """Cancel every job, stop the daemons this object started, delete their pid files and the configuration."""
        if self._lock is None:
            return  # start() never got the lock: nothing here is ours
        try:
            if "slurmctld" in self.started and shutil.which("scancel"):
                with contextlib.suppress(subprocess.SubprocessError, OSError):
                    _run(["scancel", "--full", "--partition", PARTITION], timeout=15)
            for name in ("slurmd", "slurmctld", "munged"):
                if name not in self.started:
                    continue
                from_file = _pid_from_file(name)
                for pid in [from_file] if from_file is not None else _pids_named(name):
                    _terminate(pid, name)
                PID_FILES[name].unlink(missing_ok=True)
            if "slurmd" in self.started:
                # Job steps of jobs still running when slurmd went away belong to this cluster too.
                for pid in _pids_named("slurmstepd"):
                    _terminate(pid, "slurmstepd", timeout=5)
            for path in (SLURM_CONF, GRES_CONF):
                if path.exists() and MARKER in path.read_text():
                    path.unlink()
            self.started.clear()
            STARTED_FILE.unlink(missing_ok=True)
        finally:
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    # Inspection -----------------------------------------------------------------------------------------------------

    def logs(self, lines: int = 30) -> str:
        parts = []
        for name in ("slurmctld", "slurmd"):
            path = LOG_DIR / f"{name}.log"
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)

    @staticmethod
    def show_job(job_id: str) -> str:
        """``scontrol show job`` of ``job_id`` (kept by slurmctld for MinJobAge seconds after it ends)."""
        return _run(["scontrol", "show", "job", job_id], timeout=15).stdout


@contextlib.contextmanager
def running_cluster(start_timeout: float = 90) -> Iterator[Cluster]:
    """Install the packages if needed, start a :class:`Cluster`, and always stop it again."""
    reason = unavailable_reason()
    if reason:
        raise UnavailableError(reason)
    cluster = Cluster()  # notes before the install whether munged was already running
    install_packages()
    try:
        cluster.start(start_timeout)
        yield cluster
    finally:
        cluster.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("action", choices=["plugin", "install", "start", "status", "stop"])
    action = parser.parse_args(argv).action
    if action == "plugin":
        print(ensure_plugin())
    elif action == "install":
        print("installed:", " ".join(install_packages()) or "nothing (all present)")
    elif action == "start":
        install_packages()
        cluster = Cluster()
        cluster.start()
        print(f"node {cluster.host} idle; stop with: python {Path(__file__).relative_to(REPO)} stop")
    elif action == "status":
        for name in ("munged", "slurmctld", "slurmd"):
            print(f"{name}: pid {_pid_from_file(name)}")
        print(_run(["sinfo"]).stdout if shutil.which("sinfo") and SLURM_CONF.exists() else "no cluster configured")
    else:
        cluster = Cluster()
        cluster._lock = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
        # What `start` started; without its note only the SLURM daemons (munged may serve something else).
        noted = STARTED_FILE.read_text().split() if STARTED_FILE.exists() else ["slurmctld", "slurmd"]
        cluster.started = noted
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
