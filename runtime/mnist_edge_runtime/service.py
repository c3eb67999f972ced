"""``serve --systemd-unit``: a systemd unit that runs ``serve`` as a service on a device.

The unit restarts the server when it fails, caps its memory (``MemoryMax=``: ``serve`` peaks
under 300 MB under a hostile load, see ``benchmarks/serve_hostile.py``), runs it without root and
without a way to gain privileges, read-only on the file system, and gives a stop more time than
the server's own bounded shutdown takes.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import sys
from pathlib import Path

from mnist_edge_runtime.errors import RuntimeInputError

UNIT = """\
# mnist-edge-runtime serve as a systemd service. Install:
#   mnist-edge-runtime serve ... --systemd-unit | sudo tee /etc/systemd/system/mnist-edge.service
#   sudo systemctl daemon-reload && sudo systemctl enable --now mnist-edge
[Unit]
Description=mnist-edge draw-a-digit page and HTTP API ({model})
After=network-online.target
Wants=network-online.target

[Service]
ExecStart={command}
{user}{writable}
Restart=on-failure
RestartSec=2
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
# The service gets its own empty /tmp: a runtime or model under /tmp or /var/tmp is not there.
PrivateTmp=yes
MemoryMax=384M
LimitNOFILE=1024
# serve stops within 5 s of SIGTERM (in-flight requests are cancelled after that).
TimeoutStopSec=15

[Install]
WantedBy=multi-user.target
"""


def systemd_unit(args: argparse.Namespace, model: Path) -> str:
    """The unit text for ``serve`` with the options in ``args`` and an absolute model path."""
    command = [
        os.path.abspath(sys.executable),
        "-m",
        "mnist_edge_runtime",
        "serve",
        "--model-file",
        str(model.resolve()),
    ]
    command += ["--host", args.host, "--port", str(args.port), "--max-body", str(args.max_body)]
    command += ["--max-in-flight", str(args.max_in_flight), "--log-level", args.log_level]
    command += ["--header-timeout", f"{args.header_timeout:g}", "--body-timeout", f"{args.body_timeout:g}"]
    if args.workers:
        command += ["--workers", str(args.workers)]
    if args.backend:
        command += ["--backend", args.backend]
    if args.allowed_hosts:
        command += ["--allowed-hosts", args.allowed_hosts]
    writable = ""
    if args.collect is not None:  # the one folder the read-only service writes to
        collect = args.collect.resolve()
        command += ["--collect", str(collect)]
        if args.collect_max is not None:
            command += ["--collect-max", str(args.collect_max)]
        if args.collect_min_free is not None:
            command += ["--collect-min-free", str(args.collect_min_free)]
        writable = "\nReadWritePaths=" + str(collect).replace("\\", "\\\\").replace("%", "%%").replace(
            " ", "\\x20"
        )
    # systemd expands % specifiers, $VARIABLES and C escapes in ExecStart, even inside quotes;
    # its quoting otherwise follows the shell's.
    exec_line = " ".join(shlex.quote(part) for part in command)
    exec_line = exec_line.replace("\\", "\\\\").replace("%", "%%").replace("$", "$$")
    # The user who owns the virtual environment runs it (it can read its files: a home folder is
    # private on Raspberry Pi OS); a user made up by systemd where that is root (say in /opt).
    prefix = Path(sys.prefix).resolve()
    owner = pwd.getpwuid(prefix.stat().st_uid).pw_name
    if owner == "root" and prefix.parts[1:2] in (("root",), ("home",)):
        raise RuntimeInputError(
            f"{prefix}: a service user made up by systemd cannot read a home folder; install the "
            "runtime elsewhere (say /opt/mnist-edge) or as the user who will run the service"
        )
    user = "DynamicUser=yes" if owner == "root" else f"User={owner}"
    for path in (prefix, model.resolve()):
        hidden = next((tmp for tmp in ("/tmp", "/var/tmp") if path.is_relative_to(tmp)), None)
        if hidden:
            sys.stderr.write(
                f"warning: {path} is under {hidden}, which the unit's PrivateTmp=yes hides from the "
                "service: it would not start; install the runtime (and keep the model) elsewhere\n"
            )
            break
    if args.collect is not None and not args.collect.is_dir():
        sys.stderr.write(
            f"note: create {args.collect.resolve()} (writable by {owner if owner != 'root' else 'the service'}) "
            "before starting the service: systemd makes the rest of the system read-only for it\n"
        )
    return UNIT.format(model=model.name, command=exec_line, user=user, writable=writable)
