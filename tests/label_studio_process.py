"""The real Label Studio (PyPI `label-studio`, in its own venv `.venv-labelstudio`: its pins clash with ours) on a
free 127.0.0.1 port with SQLite in a temporary dir, its legacy API token turned on, stopped by PID afterwards."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from raner_pool.server.launch import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
LABEL_STUDIO = ROOT / ".venv-labelstudio" / "bin" / "label-studio"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
ENABLE_LEGACY_TOKENS = (
    "from jwt_auth.models import JWTSettings\n"
    "from organizations.models import Organization\n"
    "for org in Organization.objects.all():\n"
    "    settings, _ = JWTSettings.objects.get_or_create(organization=org)\n"
    "    settings.legacy_api_tokens_enabled = True\n"
    "    settings.save()\n"
    "\n"
)


@dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=120)


@contextmanager
def running_label_studio(data_dir: Path, log: Path) -> Iterator[LabelStudio]:
    port = free_port()
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "DJANGO_DB": "sqlite",
           "LABEL_STUDIO_USERNAME": "annotator@example.com", "LABEL_STUDIO_PASSWORD": "annotator-password",
           "LABEL_STUDIO_USER_TOKEN": TOKEN, "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
           "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "false",
           # it refuses ML backends (and their webhooks) on 127.0.0.0/8 otherwise
           "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false",
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
           "LABEL_STUDIO_HOST": f"http://127.0.0.1:{port}"}  # the hostname /setup tells backends to pull from
    with open(log, "wb") as out:
        process = subprocess.Popen([str(LABEL_STUDIO), "start", "--host", "127.0.0.1", "--port", str(port),
                                    "--no-browser"], stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 240
            while True:
                assert process.poll() is None, log.read_text(errors="replace")[-3000:]
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "Label Studio did not answer /health in 240 s"
                time.sleep(1)
            subprocess.run([str(LABEL_STUDIO), "shell"], input=ENABLE_LEGACY_TOKENS.encode(), env=env, check=True,
                           capture_output=True, timeout=120)  # its shell reads Python from a non-tty stdin
            yield LabelStudio(url, TOKEN)
        finally:
            stop_process(process, 20)
