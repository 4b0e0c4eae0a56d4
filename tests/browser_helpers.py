"""Helpers for the real-browser tests: a JupyterLab server on 127.0.0.1 and a Chromium that records
every request and refuses any to a host that is not local."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]", ""}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A JupyterLab server started on 127.0.0.1 serving ``root`` (a copy of the notebooks)."""

    root: Path
    port: int
    token: str
    proc: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        # ?reset: start from an empty workspace (no tabs restored from the previous notebook)
        return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        """Shut down every kernel of this server (REST API), so notebooks do not pile up memory."""
        import json

        hdr = {"Authorization": f"token {self.token}"}
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{self.base}/api/kernels", headers=hdr),
                                        timeout=10) as r:
                kernels = json.loads(r.read())
            for k in kernels:
                req = urllib.request.Request(f"{self.base}/api/kernels/{k['id']}", method="DELETE", headers=hdr)
                urllib.request.urlopen(req, timeout=30).close()
        except OSError:
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_lab(root: Path, workdir: Path, timeout: float = 180.0) -> LabServer:
    """Start ``jupyter lab`` on a free localhost port with a token; wait until its API answers."""
    port = free_port()
    token = secrets.token_hex(16)
    env = dict(os.environ)
    env["WORKBENCH_FAST"] = "1"
    if os.environ.get("WORKBENCH_DATA_MIRROR"):
        env["WORKBENCH_DATA_MIRROR"] = os.environ["WORKBENCH_DATA_MIRROR"]
    env["JUPYTER_RUNTIME_DIR"] = str(workdir / "runtime")
    env["IPYTHONDIR"] = str(workdir / "ipython")
    # a private config dir whose page_config turns off JupyterLab's news pop-up (it covers plots)
    labconfig = workdir / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    env["JUPYTER_CONFIG_DIR"] = str(workdir / "config")
    # private user settings: render every cell (no virtual scrolling), so plots far down exist and paint
    settings = workdir / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter) if jupyter.exists() else "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
           f"--LabApp.user_settings_dir={workdir / 'user-settings'}",
           f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = workdir / "jupyterlab.log"
    fh = open(log, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT)
    server = LabServer(root, port, token, proc, log)
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base}/api/status?token={token}", timeout=5) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(1.0)
    server.stop()
    raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def copy_notebooks(src: Path, dst: Path) -> None:
    """Copy the curated notebooks so that running them in the browser never touches the repository."""
    dst.mkdir(parents=True, exist_ok=True)
    for nb in sorted(src.glob("*.ipynb")):
        shutil.copy2(nb, dst / nb.name)


@dataclass
class RequestLog:
    """Every URL the page asked for, and those refused because the host is not local."""

    urls: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def route(self, route) -> None:
        url = route.request.url
        self.urls.append(url)
        if is_local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


def is_local(url: str) -> bool:
    """True for URLs on this machine (127.0.0.1/localhost), data:, blob: and about: URLs."""
    p = urlparse(url)
    if p.scheme in ("data", "blob", "about", "file", "chrome-extension"):
        return True
    return (p.hostname or "") in LOCAL_HOSTS


# JavaScript run in the page (window.jupyterapp is exposed by --LabApp.expose_app_in_browser)
JS_NOTEBOOK_STATE = """
() => {
  const app = window.jupyterapp;
  if (!app) return null;
  const nb = app.shell.currentWidget;
  if (!nb || !nb.content || !nb.content.model || !nb.sessionContext) return null;
  const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
  const cells = nb.content.model.cells;
  const out = {status: kernel ? kernel.status : null, code: 0, done: 0, errors: []};
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    out.code += 1;
    if (c.executionCount !== null && c.executionCount !== undefined) out.done += 1;
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j);
      if (o.type === 'error') {
        const j2 = o.toJSON();
        out.errors.push(`cell ${i}: ${j2.ename}: ${j2.evalue}`);
      }
    }
  }
  return out;
}
"""

JS_RUN_ALL = """
async () => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget;
  app.shell.activateById(nb.id);  // the command acts on the active notebook
  await nb.sessionContext.ready;
  await nb.revealed;
  await app.commands.execute('notebook:run-all-cells');
  return true;
}
"""
