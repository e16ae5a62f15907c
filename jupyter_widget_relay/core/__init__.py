"""The relay's pure core: message model, widget table, buffers and fan-out.

Nothing in this package imports tornado, zmq or jupyter_server; the adapters in
the parent package translate between these objects and the wire.
"""
