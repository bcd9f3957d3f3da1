"""podman on these machines, following ../shared/containers.md: runc, capped ulimits, the host's
CA bundle for pip inside the build, and a Debian base built locally when it is missing."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

PODMAN = shutil.which("podman")
BASE_IMAGE = "localhost/bookworm-py:latest"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def containers_conf(path: Path) -> Path:
    """runc (crun fails on this cgroup set-up) and ulimits no higher than the hard limits here
    (podman's defaults fail with `setrlimit RLIMIT_NOFILE: Operation not permitted`)."""
    _, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, nproc = resource.getrlimit(resource.RLIMIT_NPROC)
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    return path


class Podman:
    def __init__(self, conf: Path) -> None:
        assert PODMAN is not None
        self.exe = PODMAN
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, *args], capture_output=True, text=True, timeout=timeout, env=self.env
        )

    def check(self, *args: str, timeout: float = 60) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name).returncode == 0

    def ensure_base_image(self, workdir: Path) -> None:
        """Debian bookworm with python3 from Debian's packages (about 30 s), once per machine:
        no registry can be reached to pull a Python base."""
        if self.image_exists(BASE_IMAGE):
            return
        mmdebstrap = shutil.which("mmdebstrap")
        assert mmdebstrap is not None, "mmdebstrap not found: .ci/run installs it"
        tarball = workdir / "bookworm-py.tar"
        # The host's own apt sources, so the base comes from where this machine's packages do.
        mirror = [str(DEBIAN_SOURCES)] if DEBIAN_SOURCES.exists() else []
        built = subprocess.run(
            [
                mmdebstrap,
                "--quiet",
                "--variant=apt",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(tarball),
                *mirror,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert built.returncode == 0, built.stderr
        try:
            self.check("import", str(tarball), BASE_IMAGE, timeout=300)
        finally:
            tarball.unlink(missing_ok=True)

    def build(self, tag: str, context: Path) -> None:
        # --format docker: the OCI format has no HEALTHCHECK and podman would drop it.
        args = ["build", "--format", "docker", "--tag", tag]
        if HOST_CA.exists():
            # Downloads go through a TLS-inspecting path: pip must trust the host's bundle.
            args += ["--volume", f"{HOST_CA}:/run/host-ca.crt:ro"]
            args += ["--build-arg", "PIP_CERT=/run/host-ca.crt"]
        self.check(*args, str(context), timeout=900)
