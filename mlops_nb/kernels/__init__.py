"""Warm kernels: a pool of started, preloaded kernels that notebook steps run on.

``pool`` manages kernels; ``lease`` makes a pooled kernel look like a kernel manager
to nbclient; ``inkernel`` runs inside each kernel (preload, reset between runs);
``daemon`` serves a pool to later commands over a Unix socket.
"""
