"""The agent worker as a stack service: models prepared once, then `python -m agent`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stack.errors import StackError
from stack.layout import StackLayout
from stack.managed import BinaryService
from stack.processes import log_excerpt
from workbench.processes import process_tree_memory_mb


class AgentService(BinaryService):
    """One livekit-agents worker running one model stack; healthy when its HTTP check answers.

    Named `agent-<stack>` (its log, pidfile and model verdict), or `agent-<stack>-<n>`
    for the n-th worker of a stack (WORKBENCH_AGENT_WORKERS per stack in
    WORKBENCH_AGENT_STACKS), each on its own port counted up from WORKBENCH_AGENT_PORT.
    """

    port_setting = "WORKBENCH_AGENT_PORT"
    # The prefix of every worker's service name, and so of its pidfile.
    name_prefix = "agent-"
    # 200 only once a job process loaded the models and answered a warm-up turn and the
    # worker registered with LiveKit, which dispatches only to registered workers
    # (agent/model_health.py); the worker's own "/" answers as soon as it runs.
    health_path = "/models"
    start_timeout_s = 300.0  # model loading on a cold cache

    def __init__(
        self,
        layout: StackLayout,
        *,
        port: int,
        stack: str,
        stack_file: Path,
        instance: int = 1,
        livekit_url: str | None = None,
    ) -> None:
        # agent-<stack>, then agent-<stack>-2, ... for more workers of one stack
        self.name = f"{self.name_prefix}{stack}" + (f"-{instance}" if instance > 1 else "")
        super().__init__(layout, port=port)
        self.stack = stack
        self.stack_file = stack_file
        # The LiveKit node it registers with (multi-node: workers spread over the nodes;
        # any node dispatches to it); None: LIVEKIT_URL as configured.
        self.livekit_url = livekit_url

    @property
    def status_file(self) -> Path:
        """Where the worker writes its model health (it outlives the worker)."""
        return self.layout.run_dir / f"{self.name}-models.json"

    @property
    def url(self) -> str:
        return f"worker for the {self.stack} stack (health {self.health_url})"

    def memory_mb(self) -> int | None:
        """Memory of the worker with its job processes (models loaded), if it runs."""
        pid = self.pid()
        return process_tree_memory_mb(pid) if pid is not None else None

    def environment(self) -> dict[str, str]:
        env = self.python_environment()
        env["WORKBENCH_AGENT_STACK"] = str(self.stack_file)
        env["WORKBENCH_AGENT_STATUS_FILE"] = str(self.status_file)
        if self.livekit_url is not None:
            env["LIVEKIT_URL"] = self.livekit_url
        # Prometheus multiprocess mode: the job processes' metrics reach the worker's
        # /metrics through this folder (agent/metrics.py); livekit-agents empties it at start.
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.layout.run_dir / f"{self.name}-metrics")
        env.setdefault(
            "HF_HUB_OFFLINE", "1"
        )  # models come from packages and the cache, never a hub
        return env

    def prepare(self) -> None:
        """Convert the stack's checkpoints (once; cached) so the worker starts quickly."""
        log = self.layout.logs_dir / f"prepare-{self.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as handle:
            result = subprocess.run(
                [sys.executable, "-m", "workbench.models.prepare", str(self.stack_file)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                check=False,
            )
        if result.returncode != 0:
            raise StackError(f"{self.name}: preparing the models failed." + log_excerpt(log))
        self._binary = Path(sys.executable)

    def command(self, binary: Path) -> list[str]:
        return [str(binary), "-m", "agent"]

    def start(self) -> None:
        """Start the worker and wait until a job process answered its warm-up turn.

        Fails with the worker's own account (which process, what signal) when the
        models cannot load, rather than after the whole start timeout.
        """
        if not self.running():
            self.status_file.unlink(missing_ok=True)  # a previous worker's verdict
        try:
            super().start()
        except StackError as exc:
            reason = self.models_failure()
            if reason is None:
                raise
            raise StackError(f"{self.name}: {reason}." + log_excerpt(self.log_path)) from exc

    def stop(self) -> bool:
        """Stop the worker; its model verdict goes with it (`down` kills job processes too,
        which the worker may count as failures on the way out)."""
        stopped = super().stop()
        self.status_file.unlink(missing_ok=True)
        return stopped

    def models_failure(self) -> str | None:
        """Why the worker's job processes failed to load the models, if they did."""
        try:  # written by agent/model_health.py
            status = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        if status.get("state") in ("failed", "gave_up"):
            return str(status["reason"])
        return None

    def status_detail(self) -> str:
        reason = self.models_failure()
        if reason:
            return reason + log_excerpt(self.log_path, lines=5)
        memory = self.memory_mb() if self.running() else None
        return f"{memory} MB with its job processes" if memory is not None else ""
