"""A real MIT Kerberos KDC on loopback for `make test-kerberos` (Debian: krb5-kdc, krb5-admin-server).

Everything lives in one temporary directory: krb5.conf and kdc.conf, the database (kdb5_util), an
operator principal with a password, the on-premises Exchange server's service principal
HTTP/<host> with its key in a keytab (kadmin.local ktadd), and `krb5kdc -n` on a free port. Clients
in this process find it through KRB5_CONFIG and keep tickets in a FILE: ccache (KRB5CCNAME).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REALM = "CONTOSO.TEST"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Kdc:
    realm: str
    directory: Path
    env: dict[str, str]  # KRB5_CONFIG, KRB5_KDC_PROFILE (and nothing else) for tools and clients
    port: int

    def kadmin(self, query: str) -> str:
        done = subprocess.run(
            [_tool("kadmin.local"), "-r", self.realm, "-q", query],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0 or "error" in done.stderr.lower():
            raise RuntimeError(f"kadmin.local {query!r}: {done.stderr.strip()}")
        return done.stdout

    def add_user(self, name: str) -> tuple[str, str]:
        """A user principal with a random password: (principal, password)."""
        password = secrets.token_urlsafe(16)
        self.kadmin(f"addprinc -pw {password} {name}")
        return f"{name}@{self.realm}", password

    def add_service(self, principal: str, keytab: Path) -> Path:
        """A service principal (e.g. HTTP/127.0.0.1) with a random key, written to `keytab` (each call
        re-keys it: an older keytab then holds a key the KDC no longer issues tickets for)."""
        if f"{principal}@{self.realm}" not in self.kadmin("listprincs"):
            self.kadmin(f"addprinc -randkey {principal}")
        self.kadmin(f"ktadd -k {keytab} {principal}")
        return keytab

    def kinit(self, principal: str, password: str, ccache: Path) -> None:
        done = subprocess.run(
            [_tool("kinit"), "-c", f"FILE:{ccache}", principal],
            env={**os.environ, **self.env},
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kinit {principal}: {done.stderr.strip()}")


@contextmanager
def running_kdc(directory: Path, realm: str = REALM) -> Iterator[Kdc]:
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (directory / "krb5.conf").write_text(
        f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1

[realms]
    {realm} = {{
        kdc = 127.0.0.1:{port}
    }}
""",
        encoding="utf-8",
    )
    (directory / "kdc.conf").write_text(
        f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {realm} = {{
        database_name = {directory}/principal
        key_stash_file = {directory}/stash
        acl_file = {directory}/kadm5.acl
        max_life = 10h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{directory}/kdc.log
""",
        encoding="utf-8",
    )
    (directory / "kadm5.acl").write_text("", encoding="utf-8")
    env = {"KRB5_CONFIG": str(directory / "krb5.conf"), "KRB5_KDC_PROFILE": str(directory / "kdc.conf")}
    full = {**os.environ, **env}
    subprocess.run(
        [_tool("kdb5_util"), "create", "-s", "-r", realm, "-P", secrets.token_urlsafe(16)],
        env=full,
        check=True,
        capture_output=True,
        timeout=60,
    )
    proc = subprocess.Popen(
        [_tool("krb5kdc"), "-n", "-r", realm], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"krb5kdc exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("krb5kdc did not listen within 20 s") from None
                time.sleep(0.05)
        yield Kdc(realm, directory, env, port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
