"""``corpnet gateway``: the local gateway in the foreground (a sidecar container)."""

from __future__ import annotations

import os

import click


@click.command()
@click.option("--supervise", is_flag=True, hidden=True, help="Internal: started by corpnet run.")
@click.option("--worker-fds", default="", hidden=True, help="Internal: inherited sockets.")
@click.option("--ready-fd", type=int, default=None, hidden=True, help="Internal: readiness pipe.")
@click.option("--follow-parent", is_flag=True, hidden=True, help="Internal: end with the agent.")
def gateway(supervise: bool, worker_fds: str, ready_fd: int | None, follow_parent: bool) -> None:
    """Run the gateway in the foreground until SIGTERM.

    The same gateway `corpnet run` starts when CORPNET_GATEWAY is on: a proxy
    on CORPNET_GATEWAY_LISTEN (127.0.0.1:3128 and [::1]:3128) that logs in to
    the upstream proxy (HTTPS_PROXY or CORPNET_PAC_URL) with
    CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE or CORPNET_KRB5_KEYTAB,
    applies NO_PROXY and CORPNET_EGRESS, and logs every connection to
    <runtime dir>/egress.log. In Kubernetes, run it in a sidecar container that
    alone mounts the credentials, and point the agent container at it with
    HTTPS_PROXY=http://127.0.0.1:3128 and CORPNET_GATEWAY=off.
    """
    import sys

    if supervise:
        from corpnet.run._gateway import supervise as run_supervisor

        sys.exit(run_supervisor(os.environ, ready_fd=ready_fd, follow_parent=follow_parent))
    from corpnet import gateway as stage

    fds = tuple(int(fd) for fd in worker_fds.split(",") if fd)
    sys.exit(stage.serve(os.environ, fds=fds, ready_fd=ready_fd))
