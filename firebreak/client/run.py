"""Carries out a client command (parsers.py declares them): its exit code is what scripts
test (errors.EXIT_CODES_HELP)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from firebreak.client import commands, config, dead_letters, evidence_commands, trace_command
from firebreak.client.errors import CommandFailed, ExitCode
from firebreak.client.gateway import Gateway
from firebreak.client.output import Output

Command = Callable[[argparse.Namespace, Gateway, Output], None]

COMMANDS: dict[str, Command] = {
    "incidents list": commands.incidents_list,
    "incidents show": commands.incidents_show,
    "incidents report": commands.incidents_report,
    "incidents ack": commands.incidents_command,
    "incidents contain": commands.incidents_command,
    "incidents resolve": commands.incidents_command,
    "timeline": commands.timeline,
    "schedules who": commands.schedules_who,
    "evidence add": evidence_commands.add,
    "evidence verify": evidence_commands.verify,
    "evidence export": evidence_commands.export,
    "trace": trace_command.trace,
}


def run_client_command(args: argparse.Namespace) -> int:
    name: str = args.client_command
    out = Output(as_json=getattr(args, "json", False))
    try:
        if name == "login":
            commands.login(args, out)
        elif name == "dead-letters":
            dead_letters.run(args)
        else:
            with Gateway(config.current_login()) as gateway:
                COMMANDS[name](args, gateway, out)
    except CommandFailed as failure:
        out.warn(f"firebreak {name}: {failure.message}")
        return failure.code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130  # as a shell reports a command ended by Ctrl-C
    return ExitCode.DONE
