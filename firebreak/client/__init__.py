"""The `firebreak` commands for responders and SREs that talk to a running platform: the
gateway's HTTP API with a stored login (`login`, `incidents`, `timeline`, `evidence add | verify |
export`, `schedules who`, `dead-letters`) and its traces (`trace`).

`parsers` declares them (argparse only, so a service process started by `firebreak serve` loads
none of the rest); `run` carries them out. `trace_tree` is pure and shared with any page that
draws the same trace."""
