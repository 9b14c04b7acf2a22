"""vouchd from Python: the grpcio stubs of proto/vouch/v1/vouch.proto, generated at run time
(grpcio-tools) into a temporary folder, and channels over the Unix socket and over mutual TLS
as a terminal opens them. Shared by scripts/load.py and tests/python/vouchd_client.py; owns
no test or measurement logic.
"""
import atexit
import functools
import os
import shutil
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Room for full-size photos in a request (the daemon's own limit is max_message_bytes).
# A pool of its own per channel: grpc-core otherwise shares one connection among channels to
# the same target, and every channel here stands for a terminal with its own connection.
OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]


@functools.cache
def load_stubs():
    """`(vouch_pb2, vouch_pb2_grpc)`, generated once per process."""
    out = tempfile.mkdtemp(prefix="vouch-stubs-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    proto_dir = os.path.join(ROOT, "proto")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main([
        "protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
        f"--grpc_python_out={out}", "vouch/v1/vouch.proto",
    ])
    if code != 0:
        sys.exit("protoc failed on proto/vouch/v1/vouch.proto")
    sys.path.insert(0, out)
    from vouch.v1 import vouch_pb2, vouch_pb2_grpc  # noqa: E402
    return vouch_pb2, vouch_pb2_grpc


def unix_channel(socket):
    """An insecure channel to vouchd's Unix socket (the local terminal), on a connection of
    its own."""
    # grpc-core names a Unix socket's path as the HTTP/2 authority, which is not a valid
    # authority and which vouchd's HTTP/2 stack refuses: name a plain one instead.
    options = OPTIONS + [("grpc.default_authority", "localhost")]
    return grpc.insecure_channel(f"unix://{socket}", options=options)


def tls_channel(target, certs, name, ca="ca.pem"):
    """A mutual-TLS channel, on a connection of its own, to vouchd's TCP listener `target`
    (HOST:PORT) as terminal `name`, whose certificate and key are `certs/NAME.pem` and
    `certs/NAME.key` (scripts/test-certs.sh); `name=None` presents no client certificate. The
    server is checked against `certs/CA` under the name `localhost`, whatever address `target`
    uses.
    """
    def read(f):
        with open(os.path.join(certs, f), "rb") as fh:
            return fh.read()
    if name is None:
        creds = grpc.ssl_channel_credentials(root_certificates=read(ca))
    else:
        creds = grpc.ssl_channel_credentials(root_certificates=read(ca),
                                             private_key=read(f"{name}.key"),
                                             certificate_chain=read(f"{name}.pem"))
    options = OPTIONS + [("grpc.ssl_target_name_override", "localhost")]
    return grpc.secure_channel(target, creds, options=options)
