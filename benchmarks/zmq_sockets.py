"""A kernel manager whose ZMQ context allows more than libzmq's default 1,023 sockets.

Stock jupyter_server opens 4 ZMQ sockets per browser (shell, control, stdin, iopub), all
in the kernel manager's one context, so a stock server refuses the ~256th browser with
"ZMQError: Too many open files". The relay raises that cap itself
(``c.WidgetRelay.zmq_max_sockets``, default 65535). ``python -m benchmarks.run
--zmq-max-sockets N`` gives both servers the same cap N: the relay through its setting,
stock through this class (``--ServerApp.kernel_manager_class``), so stock can be measured
past its default cap too. The option must be set before the context's first socket
exists, hence the context default here.
"""

from __future__ import annotations

import os

import zmq
import zmq.asyncio
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import default

ENV = "RELAY_BENCH_ZMQ_MAX_SOCKETS"


class ManySocketsKernelManager(AsyncMappingKernelManager):
    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.set(zmq.MAX_SOCKETS, int(os.environ.get(ENV, "8192")))
        return context
