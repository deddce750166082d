"""The ``cli-reference`` directive: the command line's reference, read from its argparse parser.

``skyproto.cli.build_parser()`` is the one description of the command line, so the reference is
rendered from it at build time and cannot drift: the global options first, then one section per
verb with its usage, its description and every option with its help text.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive


def _emulator_parser() -> argparse.ArgumentParser:
    from skyproto.emulator import server

    return server._parser()


#: Verbs that hand their arguments to a parser of their own (``skyproto emulator ARG ...``).
OWN_PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {"emulator": _emulator_parser}

#: Width the usage lines are wrapped at, whatever the terminal of the build.
WIDTH = "88"


@contextlib.contextmanager
def _columns() -> Iterator[None]:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> nodes.definition_list:
    formatter = parser._get_formatter()
    listing = nodes.definition_list()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        term = nodes.term()
        term += nodes.literal(text=formatter._format_action_invocation(action))
        body = nodes.definition()
        body += nodes.paragraph(text=formatter._expand_help(action) if action.help else "")
        listing += nodes.definition_list_item("", term, body)
    return listing


class CliReference(Directive):
    """``.. cli-reference::``: the global options, then a section per verb."""

    has_content = False

    def _section(self, title: str, name: str) -> nodes.section:
        section = nodes.section(ids=[nodes.make_id(name)], names=[nodes.fully_normalize_name(name)])
        section += nodes.title(text=title)
        self.state.document.note_implicit_target(section, section)
        return section

    def _describe(self, section: nodes.section, parser: argparse.ArgumentParser) -> None:
        section += nodes.literal_block(text=parser.format_usage().strip(), language="text")
        if parser.description:
            section += nodes.paragraph(text=parser.description)
        section += _options(parser)
        if parser.epilog:
            section += nodes.paragraph(text=parser.epilog)

    def run(self) -> list[nodes.Node]:
        from skyproto.cli import build_parser

        with _columns():
            parser = build_parser()
            top = self._section("Global options", "cli-global-options")
            self._describe(top, parser)
            sections = [top]
            for name, verb in _verbs(parser).items():
                section = self._section(f"skyproto {name}", f"cli-{name}")
                self._describe(section, verb)
                if own := OWN_PARSERS.get(name):
                    section += nodes.paragraph(text=f"The arguments of {name} are its own:")
                    self._describe(section, own())
                sections.append(section)
        return sections


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("cli-reference", CliReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
