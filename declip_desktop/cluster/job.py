"""A cluster run as the app drives it: connect (list the nodes), run, stop, close. No Qt.

The dialog (gui/cluster_dialog.py) calls these from its own thread; this class opens its own
`Case` connection for the run, as the app's local analysis worker does.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from declip_desktop.cluster.connect import ClusterInfo, ClusterSession
from declip_desktop.cluster.driver import ClusterOptions, run_on_cluster
from declip_desktop.cluster.stats import ClusterProgress, ClusterRunSummary


class ClusterJob:
    def __init__(self, case_path: str | Path, model: Any, analyst: str | None = None):
        self.case_path = Path(case_path)
        self.model = model
        self.analyst = analyst
        self.session: ClusterSession | None = None
        self._stop = threading.Event()

    def connect(self, address: str, num_cpus: int | None = None) -> ClusterInfo:
        """(Re)connect to `address` and describe the cluster; the connection stays open for `run`."""
        self.close()
        session = ClusterSession(address, num_cpus=num_cpus)
        session.open()
        self.session = session
        return session.info()

    def run(self, options: ClusterOptions, on_progress: Callable[[ClusterProgress], None] | None = None,
            evidence_ids: list[int] | None = None) -> ClusterRunSummary:
        from declip_desktop.cases import Case
        from declip_desktop.cluster.connect import ClusterError

        if self.session is None:
            raise ClusterError("connect to a cluster first")
        self._stop.clear()
        with Case.open(self.case_path, analyst=self.analyst) as case:
            return run_on_cluster(case, self.model, self.session, options, evidence_ids=evidence_ids,
                                  on_progress=on_progress, should_stop=self._stop.is_set, analyst=self.analyst)

    def stop(self) -> None:
        """Ask a running `run` to stop between batches (what was sent comes back to the queue)."""
        self._stop.set()

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.close()
