#!/usr/bin/env python3
"""Starts the Jupyter kernel KERNEL_NAME from its kernelspec (found through JUPYTER_PATH) with
jupyter_client, runs CODE in it, prints its status and output, and shuts it down.

    kernel_client.py KERNEL_NAME CODE
"""
import sys

from jupyter_client.manager import start_new_kernel

km, kc = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=120)
try:
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(sys.argv[2], timeout=120, output_hook=hook)
    print("STATUS", reply["content"]["status"])
    print("OUT", "".join(out).strip())
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=False)
