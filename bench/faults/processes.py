"""Service processes under a small supervisor, the way a process manager runs them in production:
a process that dies is started again. Deaths the run caused (SIGKILL) and deaths it did not cause
(a worker that could not start while the broker was down, say) are both recorded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass(frozen=True, slots=True)
class Exit:
    """One end of one process: `planned` when the run killed it."""

    name: str
    pid: int
    code: int | None
    at_s: float
    planned: bool


@dataclass
class ServiceProcess:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    cwd: Path
    restart: bool = True
    popen: subprocess.Popen | None = None
    starts: int = 0
    _log: IO[bytes] | None = None
    _restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._log.write(
            f"===== start {self.starts + 1} at {time.strftime('%H:%M:%S')} =====\n".encode()
        )
        self._log.flush()
        self.popen = subprocess.Popen(
            list(self.argv),
            cwd=self.cwd,
            env=dict(self.env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.starts += 1
        self._restart_at = None

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Supervisor:
    """Starts processes, restarts any that die, kills one with SIGKILL on request."""

    started_at: float = field(default_factory=time.monotonic)
    restart_delay: float = 1.0
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    exits: list[Exit] = field(default_factory=list)
    _stopping: bool = False

    def now(self) -> float:
        return round(time.monotonic() - self.started_at, 2)

    def add(self, process: ServiceProcess) -> ServiceProcess:
        self.processes[process.name] = process
        process.start()
        return process

    def kill(self, name: str) -> Exit:
        """SIGKILL: no signal handler runs, no transaction is finished, no lease is released.
        The process is started again at once."""
        process = self.processes[name]
        assert process.popen is not None
        pid = process.popen.pid
        os.kill(pid, signal.SIGKILL)
        code = process.popen.wait()
        ended = Exit(name, pid, code, self.now(), planned=True)
        self.exits.append(ended)
        process.start()
        return ended

    def check(self) -> list[Exit]:
        """Record processes that died on their own and start them again after a short delay."""
        found: list[Exit] = []
        if self._stopping:
            return found
        clock = time.monotonic()
        for process in self.processes.values():
            popen = process.popen
            if popen is None or popen.poll() is None:
                continue
            if process._restart_at is None:
                ended = Exit(process.name, popen.pid, popen.returncode, self.now(), planned=False)
                self.exits.append(ended)
                found.append(ended)
                process._restart_at = clock + self.restart_delay
            elif clock >= process._restart_at and process.restart:
                process.start()
        return found

    async def watch(self, stop: asyncio.Event, interval: float = 0.25) -> None:
        while not stop.is_set():
            self.check()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    def unplanned(self) -> list[Exit]:
        return [e for e in self.exits if not e.planned]

    def stop_all(self, timeout: float = 15.0) -> None:
        self._stopping = True
        for process in self.processes.values():
            if process.running:
                assert process.popen is not None
                process.popen.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            if process.popen is None:
                continue
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
            process.close_log()
