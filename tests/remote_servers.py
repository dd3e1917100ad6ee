"""Real DVC remote servers on loopback for the sharing tests: moto's S3 server and a throwaway OpenSSH sshd.

Each server is a subprocess bound to 127.0.0.1 on a free port, lives for one test and is stopped afterwards. A
server that cannot start (package or binary missing, port taken, sshd refusing its config) skips the test with a
one-line reason instead of failing it: the sharing flow itself is tested against a local folder everywhere.

Import the fixtures into a test module (``from remote_servers import s3_remote, ssh_remote``) and point a project
at one with :meth:`Remote.configure`.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline_helpers import run

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself, so it must be started by its absolute path
BUCKET = "uda-artifacts"
STARTUP_S = 20.0


@dataclass(frozen=True)
class Remote:
    """A DVC remote a project can be pointed at: its URL, `dvc remote modify --local` options, stored objects.

    Everything goes to the project's `.dvc/config.local`, never `.dvc/config`: a test's ports, keys and dummy
    credentials must not end up in a commit that a clone would inherit.
    """

    name: str
    url: str
    options: dict[str, str] = field(default_factory=dict)
    objects: Callable[[], set[str]] = field(default=lambda: set(), compare=False)

    def configure(self, project: Path) -> None:
        """Make this the project's default remote (local config, so a clone needs the same call)."""
        run(["dvc", "remote", "add", "--local", "--force", "--default", self.name, self.url], project)
        for key, value in self.options.items():
            run(["dvc", "remote", "modify", "--local", self.name, key, value], project)


def folder_objects(root: Path) -> set[str]:
    """Relative paths of the files under ``root`` (a folder remote's or the SSH remote's objects)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def free_port() -> int:
    """A port nothing listens on right now (the server binds it a moment later; a lost race is retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in _text(log).splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serve(what: str, command: Callable[[int], list[str]], log: Path, ready: str, attempts: int = 3) -> Iterator[int]:
    """Run ``command(port)`` until its log says ``ready.format(port=port)``; yield the port; stop it afterwards.

    Readiness is read from the server's own log, not from a connection: another process can take the free port
    between :func:`free_port` and the bind, and a connection would then reach that process. Our server exits
    instead, and is retried on a new port ``attempts`` times. Skips the calling test with the server's last log
    line when it keeps exiting or is not ready within ``STARTUP_S``.
    """
    reason = ""
    for _ in range(attempts):
        port = free_port()
        with log.open("wb") as out:
            try:
                proc = subprocess.Popen(command(port), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as exc:
                pytest.skip(f"{what} cannot start: {exc}")
        deadline = time.monotonic() + STARTUP_S
        while proc.poll() is None and time.monotonic() < deadline and ready.format(port=port) not in _text(log):
            time.sleep(0.1)
        if proc.poll() is None and ready.format(port=port) in _text(log):
            try:
                yield port
            finally:
                _stop(proc)
            return
        exited = proc.poll()
        _stop(proc)
        if exited is None:
            reason = f"was not ready within {STARTUP_S:.0f} s: {_last_line(log)}"
            break
        reason = f"exited with status {exited}: {_last_line(log)}"
    pytest.skip(f"{what} on 127.0.0.1 {reason}")


def require_modules(what: str, *modules: str) -> None:
    """Skip with an install hint when a top-level module is missing (found without importing it)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{what} needs {', '.join(missing)}: pip install -e '.[test]'")


def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Hide the user's AWS settings from this process and the commands it runs (they copy ``os.environ``).

    Empty config and credentials files, no AWS_* variables (profile, keys, CA bundle), no instance-metadata
    lookups: the only credentials left are the dummy ones the test writes to `.dvc/config.local`, so a push that
    works proves DVC used them, and nothing can reach a real account.
    """
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = home / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)


@pytest.fixture
def s3_remote(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    """An empty bucket on moto's S3 server (`python -m moto.server`) and a DVC remote with dummy keys on it."""
    require_modules("S3 remote test", "moto", "flask", "boto3", "dvc_s3")
    import boto3

    home = tmp_path_factory.mktemp("s3")
    isolated_aws_env(monkeypatch, home)
    server = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p"]
    with serve("moto S3 server", lambda port: [*server, str(port)], home / "moto.log",
               ready="Running on http://127.0.0.1:{port}") as port:
        endpoint = f"http://127.0.0.1:{port}"
        keys = {"access_key_id": "testing", "secret_access_key": "testing"}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=keys["access_key_id"],
                          aws_secret_access_key=keys["secret_access_key"])
        s3.create_bucket(Bucket=BUCKET)

        def objects() -> set[str]:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="uda/")
            return {o["Key"].removeprefix("uda/") for page in pages for o in page.get("Contents", [])}

        yield Remote("s3", f"s3://{BUCKET}/uda", {"endpointurl": endpoint, "region": "us-east-1", "verify": "true",
                                                     **keys}, objects)


SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {dir}/host_ed25519
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
AllowUsers {user}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
Subsystem sftp internal-sftp
LogLevel INFO
# (INFO logs "Server listening on ...", which serve() waits for)
"""


def _keygen(path: Path) -> None:
    """A passphrase-less ed25519 key pair at ``path`` and ``path``.pub (asyncssh and sshd both read OpenSSH's)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "uda-test", "-f", str(path)], check=True,
                   capture_output=True)


@pytest.fixture
def ssh_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """An OpenSSH server for the current user, authorised for one throwaway key, and a DVC remote on a folder.

    The server's config is ours alone (no /etc/ssh, no PAM): loopback only, key login only, SFTP in-process
    (what dvc-ssh speaks). dvc-ssh connects without a known_hosts check, so the fresh host key needs no
    trusting; the remote's folder is on this machine, so the test can list what was pushed.
    """
    require_modules("SSH remote test", "dvc_ssh")
    for binary in (SSHD, shutil.which("ssh-keygen") or "ssh-keygen"):
        if not os.access(binary, os.X_OK):
            pytest.skip(f"SSH remote test needs {binary} (apt-get install openssh-server)")
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        # sshd run as root insists on its privilege-separation directory, which the Debian service creates at boot
        Path("/run/sshd").mkdir(mode=0o755)
    keys = tmp_path_factory.mktemp("sshd")
    _keygen(keys / "host_ed25519")
    _keygen(keys / "user_ed25519")
    shutil.copy(keys / "user_ed25519.pub", keys / "authorized_keys")
    user = getpass.getuser()
    store = keys / "store"
    store.mkdir()

    def command(port: int) -> list[str]:
        (keys / "sshd_config").write_text(SSHD_CONFIG.format(port=port, dir=keys, user=user))
        return [SSHD, "-D", "-e", "-f", str(keys / "sshd_config")]

    listening = "Server listening on 127.0.0.1 port {port}."
    with serve("OpenSSH sshd", command, keys / "sshd.log", ready=listening) as port:
        yield Remote("ssh", f"ssh://{user}@127.0.0.1:{port}{store}", {"keyfile": str(keys / "user_ed25519"),
                                                                        "verify": "true"},
                     lambda: folder_objects(store))
