"""The data plane of long-running pipelines: the node process contract (``contract``), the
channels records travel on (``channels/``: ``local``, ``stream``, ``landing`` behind one
protocol), the program of one node replica (``process``), the runner that joins them
(``runner``) and restarts with backoff (``restarts``), and the embedded broker
(``nats_server``). docs/deployments-runtime.md says what each promises.

The control side (specs, plans, the reconciler) maps its model onto ``model.Node`` and
``model.Edge``; nothing here knows about deployments.
"""

from __future__ import annotations

from lockstep.pipelines.model import Edge, Node, NodeKind

__all__ = ["Edge", "Node", "NodeKind"]
