"""BatchSaveQuery: saves that run in the background and are polled with QueryAsyncResult (spec §1.4).

Decisions ([INF]/[?] points of the spec):
- Save/BatchSave with ``beginmethod: BeginQueryImpl`` (any case) starts the save in a background thread
  and answers at once ``{"Status": s, "TaskId": "<GUID>", "Result": null}``, s = 0 (Pending) when the
  thread has not begun the save yet, 1 (Running) when it has. Bad parameters (no Model …) are found by
  the task, not by the first answer: its Result is then the usual MsgCode 8 envelope.
- ``QueryAsyncResult`` with ``queryInfo`` (a JSON string, or an object) ``{"TaskId": …, "Cancelled": …}``
  answers the same three keys: Status 0/1 and Result null while the save is pending or running, Status 2
  (Complete) with the normal Save/BatchSave response as Result once it is done. A finished task can be
  asked again; the latest 1000 tasks are kept. ``Cancelled: true`` is ignored (a save is not cancelled).
  An unknown TaskId answers the MsgCode 8 envelope ``未找到异步任务：<TaskId>``.
- A task's save is the synchronous save: same validation, store lock and per-bill time.
"""

from __future__ import annotations

import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

PENDING, RUNNING, COMPLETE = 0, 1, 2
MAX_TASKS = 1000


class Tasks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, dict[str, Any]] = {}  # id -> {"Status", "Result"}

    def start(self, run: Callable[[], Any], on_error: Callable[[BaseException], Any]) -> dict[str, Any]:
        """Run ``run()`` in a thread; the first answer. ``on_error`` turns an emulator bug into a Result."""
        task_id = str(uuid.uuid4())
        with self._lock:
            self._tasks[task_id] = {"Status": PENDING, "Result": None}
            while len(self._tasks) > MAX_TASKS:  # keep the latest tasks only
                self._tasks.pop(next(iter(self._tasks)))

        def work() -> None:
            self._set(task_id, RUNNING, None)
            try:
                result = run()
            except Exception as exc:  # the poller must get an answer, not wait for ever
                traceback.print_exc(file=sys.stderr)
                result = on_error(exc)
            self._set(task_id, COMPLETE, result)

        threading.Thread(target=work, name=f"kingdee-task-{task_id[:8]}", daemon=True).start()
        return self.poll(task_id) or {}

    def finished(self, result: Any) -> dict[str, Any]:
        """A task that is complete from the start (a call refused before any work)."""
        task_id = str(uuid.uuid4())
        with self._lock:
            self._tasks[task_id] = {"Status": COMPLETE, "Result": result}
        return {"Status": COMPLETE, "TaskId": task_id, "Result": result}

    def poll(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            return {"Status": task["Status"], "TaskId": task_id, "Result": task["Result"]}

    def _set(self, task_id: str, status: int, result: Any) -> None:
        with self._lock:
            if task_id in self._tasks:
                self._tasks[task_id] = {"Status": status, "Result": result}
