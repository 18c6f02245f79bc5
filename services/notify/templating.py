"""Every message notify sends, rendered from Jinja2 templates in its sandbox.

The defaults live in `services/notify/templates/`, one file per part of a message:
`<name>.subject.j2`, `<name>.txt.j2` and, optionally, `<name>.html.j2` (autoescaped; the others
are plain text). A firm overrides any of them with a file of the same name in the directory
`FIREBREAK_TEMPLATE_DIR` names; a file there that overrides no default is refused, so a typo
cannot silently leave the default in place.

Templates a client reads (`CLIENT_TEMPLATES`) are checked when loaded: every variable and field
they refer to must be one of `CLIENT_SAFE`, or loading fails naming the template and the field.
When rendered they receive only those fields, whatever the caller passed, so an internal field
cannot reach a client even through a template the check let pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    nodes,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

DEFAULT_DIR = Path(__file__).parent / "templates"
SUFFIX = ".j2"
PARTS = ("subject", "txt", "html")
# Templates whose names start with one of these are read by a client.
CLIENT_TEMPLATES = ("status_update_client",)
# What a client template may refer to: these objects, and only these fields of them.
CLIENT_SAFE: Mapping[str, frozenset[str]] = {
    "incident": frozenset({"reference", "title", "priority", "status"}),
    "update": frozenset({"body", "posted_at"}),
    "firm": frozenset({"name"}),
}
# Names Jinja itself provides inside a template.
JINJA_NAMES = frozenset({"loop", "caller", "varargs", "kwargs"})
# Messages as notify renders them, with example values: loading renders each of their templates
# once with these, so an override that names something its message lacks (a typo, a field of
# another message) stops notify at its start instead of failing every page as it falls due.
_INCIDENT = {"id": "example", "reference": "INC-2026-000001", "title": "Example", "priority": "P1"}
_UPDATE = {"id": "example", "body": "Example", "author": "Ada", "posted_at": "2026-01-01 09:00 UTC"}
EXAMPLES: Mapping[str, Mapping[str, Any]] = {
    "page": {
        "incident": _INCIDENT,
        "person": {"id": "example", "name": "Ada"},
        "kind": "page",
        "ack_url": "https://firebreak.example/v1/ack/example",
        "ack_until": "2026-01-01 10:00",
    },
    **{
        f"status_update_{audience}": {
            "incident": _INCIDENT
            | {"status": "acknowledged", "commander": "Ada", "communications_lead": "Lin"},
            "update": _UPDATE | {"audience": audience},
            "firm": {"name": "Firebreak"},
        }
        for audience in ("internal", "client")
    },
    "update_reminder": {
        "incident": _INCIDENT | {"status": "acknowledged"},
        "person": {"id": "example", "name": "Ada"},
        "due_at": "2026-01-01 09:30:00 UTC",
        "last_update_at": "2026-01-01 09:00:00 UTC",
        "interval": "30 minutes",
    },
}


class TemplateRefused(ValueError):
    """A template that cannot be used; the message names the template and what is wrong."""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str  # one line
    text: str
    html: str | None  # None: the message has no HTML template


def is_client_template(name: str) -> bool:
    return name.startswith(CLIENT_TEMPLATES)


@dataclass(frozen=True)
class Templates:
    """The templates as loaded (and checked) once at notify's start."""

    compiled: Mapping[str, Template]  # by file name, e.g. "page.subject.j2"

    @classmethod
    def load(cls, override_dir: Path | None = None) -> Templates:
        """The defaults, with a firm's overrides from `override_dir`; raises TemplateRefused
        naming the first template that does not parse, overrides nothing, (a client's) refers
        to a field a client must not see, or cannot render its message's EXAMPLES."""
        defaults = sorted(path.name for path in DEFAULT_DIR.glob(f"*{SUFFIX}"))
        loaders = [FileSystemLoader(DEFAULT_DIR)]
        if override_dir is not None:
            _check_overrides(override_dir, defaults)
            loaders.insert(0, FileSystemLoader(override_dir))
        loader = ChoiceLoader(loaders)
        environment = SandboxedEnvironment(
            loader=loader,
            autoescape=select_autoescape(
                enabled_extensions=(f"html{SUFFIX}",), default_for_string=False, default=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        compiled = {}
        for name in defaults:
            source, filename, _ = loader.get_source(environment, name)
            try:
                tree = environment.parse(source, name, filename)
                if is_client_template(name):
                    _check_client_template(name, filename or name, tree, environment)
                compiled[name] = environment.get_template(name)
            except TemplateSyntaxError as error:
                raise TemplateRefused(
                    f"template {name} ({filename}) line {error.lineno}: {error.message}"
                ) from None
        templates = cls(compiled)
        templates._render_examples()
        return templates

    def render(self, name: str, **context: Any) -> RenderedMessage:
        """The message `name` (e.g. "page"): its subject on one line, its text, and its HTML
        part when it has a template for one. A client template gets only CLIENT_SAFE."""
        if is_client_template(name):
            context = client_safe(context)
        html = self.compiled.get(f"{name}.html{SUFFIX}")
        subject = self.compiled[f"{name}.subject{SUFFIX}"].render(context)
        return RenderedMessage(
            subject=" ".join(subject.split()),
            text=self.compiled[f"{name}.txt{SUFFIX}"].render(context),
            html=html.render(context) if html is not None else None,
        )

    def _render_examples(self) -> None:
        for message, example in EXAMPLES.items():
            context = client_safe(example) if is_client_template(message) else example
            for part in PARTS:
                name = f"{message}.{part}{SUFFIX}"
                template = self.compiled.get(name)
                if template is None:
                    continue
                try:
                    template.render(context)
                except TemplateError as error:
                    raise TemplateRefused(
                        f"template {name} ({template.filename}) cannot be rendered: {error}; "
                        f"a {message} message has: {_fields(context)}"
                    ) from None


def _fields(context: Mapping[str, Any]) -> str:
    return ", ".join(
        ", ".join(f"{name}.{field}" for field in value) if isinstance(value, Mapping) else name
        for name, value in context.items()
    )


def client_safe(context: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Only the CLIENT_SAFE fields of `context` (each object a mapping or has attributes)."""
    safe: dict[str, dict[str, Any]] = {}
    for name, fields in CLIENT_SAFE.items():
        if name not in context:
            continue
        value = context[name]
        safe[name] = {
            field: value[field] if isinstance(value, Mapping) else getattr(value, field)
            for field in fields
            if (field in value if isinstance(value, Mapping) else hasattr(value, field))
        }
    return safe


def _check_overrides(override_dir: Path, defaults: list[str]) -> None:
    if not override_dir.is_dir():
        raise TemplateRefused(f"FIREBREAK_TEMPLATE_DIR {override_dir} is not a directory")
    for path in sorted(override_dir.glob(f"*{SUFFIX}")):
        if path.name not in defaults:
            raise TemplateRefused(
                f"template {path.name} ({path}) overrides no default template; the defaults "
                f"are: {', '.join(defaults)}"
            )


def _check_client_template(
    name: str, filename: str, tree: nodes.Template, environment: SandboxedEnvironment
) -> None:
    for node in tree.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
        raise TemplateRefused(
            f"template {name} ({filename}) line {node.lineno}: a client template may not "
            "include, extend or import other templates"
        )
    bound = {
        node.name for node in tree.find_all(nodes.Name) if node.ctx in ("store", "param")
    } | set(environment.globals)
    for field, lineno in _references(tree, bound | JINJA_NAMES):
        allowed = ", ".join(
            f"{obj}.{safe}" for obj, fields in CLIENT_SAFE.items() for safe in sorted(fields)
        )
        raise TemplateRefused(
            f"template {name} ({filename}) line {lineno} refers to {field}, which a client must "
            f"not see; a client template may use only {allowed}"
        )


def _references(node: nodes.Node, bound: set[str]) -> Iterator[tuple[str, int]]:
    """What `node` refers to outside CLIENT_SAFE, and on which line: an unknown name, a field
    not in the list, an object used whole (it could be handed on, fields and all), or a field
    looked up by a computed key."""
    if isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
        base = node.node.name
        if base in CLIENT_SAFE and node.node.ctx == "load":
            if isinstance(node, nodes.Getattr):
                field: object = node.attr
            else:
                field = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if not isinstance(field, str):
                yield f"{base}[…] (a computed field)", node.lineno
            elif field not in CLIENT_SAFE[base]:
                yield f"{base}.{field}", node.lineno
            if isinstance(node, nodes.Getitem):
                yield from _references(node.arg, bound)
            return
    if isinstance(node, nodes.Name) and node.ctx == "load":
        if node.name in CLIENT_SAFE:
            yield f"{node.name} (as a whole: name its fields)", node.lineno
        elif node.name not in bound:
            yield node.name, node.lineno
        return
    for child in node.iter_child_nodes():
        yield from _references(child, bound)
