"A real single-node Slurm cluster in a temporary folder (Debian's slurm-wlm and munge), for tests/test_slurm.py."
from __future__ import annotations
import os, pwd, shutil, socket, subprocess, time
from pathlib import Path

DAEMONS = ('munged', 'slurmctld', 'slurmd')

def why_not() -> str | None:
    "Why a cluster cannot be started here (None: it can)."
    if os.name != 'posix' or os.geteuid() != 0: return 'the test cluster needs root (slurmd runs jobs as their user)'
    missing = [b for b in (*DAEMONS, 'sbatch', 'squeue', 'scancel', 'sinfo') if not shutil.which(b)]
    if missing: return f"slurm-wlm/munge not installed (missing {', '.join(missing)}; `make slurm` installs them as root)"
    try: pwd.getpwnam('munge')
    except KeyError: return 'no munge user (install the munge package)'
    return None

def node_facts() -> dict:
    "This host's short name, CPUs and memory (MB) as `slurmd -C` reports them."
    facts = dict(NodeName=socket.gethostname().split('.')[0], CPUs=os.cpu_count() or 1, RealMemory=1024)
    out = subprocess.run(['slurmd', '-C'], capture_output=True, text=True).stdout
    for word in out.split():
        k, _, v = word.partition('=')
        if k in ('NodeName', 'CPUs', 'RealMemory'): facts[k] = int(v) if k != 'NodeName' else v
    return facts

class Cluster:
    "`slurmctld` + `slurmd` on this host and a private `munged`, all state in `folder`; `env` points the clients at it."
    def __init__(self, folder):
        self.folder = Path(folder).resolve()
        self.procs: dict[str, int] = {}
        self.env: dict[str, str] = {}

    def start(self, timeout: float = 30.0) -> 'Cluster':
        f = self.folder
        mu = pwd.getpwnam('munge')
        for d in ('munge', 'state', 'spool', 'log'): (f/d).mkdir(parents=True, exist_ok=True)
        os.chmod(f, 0o755)                              # munged (its own user) must reach its folder
        key = f/'munge'/'munge.key'
        key.write_bytes(os.urandom(128))
        os.chown(f/'munge', mu.pw_uid, mu.pw_gid); os.chown(key, mu.pw_uid, mu.pw_gid)
        os.chmod(f/'munge', 0o700); os.chmod(key, 0o600)
        sock = f/'munge'/'munge.socket'
        # munged refuses a group/world-writable parent of its folders: the temporary folder's parents are checked too
        self._run_as_munge(['munged', '--key-file', str(key), '--socket', str(sock), '--pid-file', str(f/'munge'/'munged.pid'),
                            '--log-file', str(f/'munge'/'munged.log'), '--seed-file', str(f/'munge'/'munged.seed'), '--force'])
        self._wait(lambda: sock.exists(), timeout, 'munged socket')
        self.procs['munged'] = int((f/'munge'/'munged.pid').read_text())
        n = node_facts()
        conf = f/'slurm.conf'
        conf.write_text('\n'.join([
            'ClusterName=sereval-test', f"SlurmctldHost={n['NodeName']}", 'SlurmUser=root', 'SlurmdUser=root',
            'AuthType=auth/munge', 'CredType=cred/munge', f'AuthInfo=socket={sock}',
            'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SelectType=select/cons_tres',
            'SelectTypeParameters=CR_CPU_Memory', 'SchedulerType=sched/backfill', 'SchedulerParameters=sched_interval=1',
            'MpiDefault=none', 'ReturnToService=2', 'SlurmctldPort=16817', 'SlurmdPort=16818',
            f"StateSaveLocation={f/'state'}", f"SlurmdSpoolDir={f/'spool'}",
            f"SlurmctldPidFile={f/'slurmctld.pid'}", f"SlurmdPidFile={f/'slurmd.pid'}",
            f"SlurmctldLogFile={f/'log'/'slurmctld.log'}", f"SlurmdLogFile={f/'log'/'slurmd.log'}",
            'JobCompType=jobcomp/none', 'AccountingStorageType=accounting_storage/none',
            'KillWait=2', 'MinJobAge=30', 'InactiveLimit=0', 'MaxArraySize=10000',
            f"NodeName={n['NodeName']} CPUs={n['CPUs']} RealMemory={n['RealMemory']} State=UNKNOWN",
            f"PartitionName=debug Nodes={n['NodeName']} Default=YES MaxTime=INFINITE State=UP", '']))
        self.env = {'SLURM_CONF': str(conf)}
        env = {**os.environ, **self.env}
        subprocess.run(['slurmctld', '-i'], env=env, check=True)    # -i: ignore any old state; daemonizes
        self._wait(lambda: (f/'slurmctld.pid').exists(), timeout, 'slurmctld')
        self.procs['slurmctld'] = int((f/'slurmctld.pid').read_text())
        subprocess.run(['slurmd'], env=env, check=True)
        self._wait(lambda: (f/'slurmd.pid').exists(), timeout, 'slurmd')
        self.procs['slurmd'] = int((f/'slurmd.pid').read_text())
        def idle():
            r = subprocess.run(['sinfo', '-h', '-o', '%T'], env=env, capture_output=True, text=True)
            return r.returncode == 0 and r.stdout.strip() in ('idle', 'mixed', 'allocated')
        self._wait(idle, timeout, 'the node to be idle')
        return self

    def _run_as_munge(self, cmd):
        mu = pwd.getpwnam('munge')
        def drop():
            os.setgid(mu.pw_gid); os.setuid(mu.pw_uid)
        r = subprocess.run(cmd, preexec_fn=drop, capture_output=True, text=True)
        if r.returncode: raise RuntimeError(f'test cluster: {cmd[0]} failed: {r.stderr.strip()}')

    def _wait(self, ok, timeout, what):
        t = time.time()
        while not ok():
            if time.time() - t > timeout:
                raise RuntimeError(f'test cluster: {what} not up after {timeout:.0f} s; logs in {self.folder}/log')
            time.sleep(0.2)

    def stop(self):
        "Stop the daemons this cluster started (by their process ids), slurmd first."
        for name in ('slurmd', 'slurmctld', 'munged'):
            pid = self.procs.pop(name, None)
            if pid is None: continue
            try: os.kill(pid, 15)
            except ProcessLookupError: continue
            for _ in range(100):
                try: os.kill(pid, 0)
                except ProcessLookupError: break
                time.sleep(0.1)
            else:
                try: os.kill(pid, 9)
                except ProcessLookupError: pass
