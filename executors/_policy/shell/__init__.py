"""Risk of a shell command line: ``read`` only when everything in it is known to only read.

The command line is parsed with bashlex (``_walk``) into simple commands, pipelines, lists,
substitutions, redirections and assignments, so quoting (``r''m``), chaining, ``$(...)``,
backticks, process substitution, subshells and ``bash -c '...'`` strings are all seen through.
A line is ``read`` when every simple command in it is on the read allow-list with every option
(and option value) on that command's own list, and every expansion in it is one the analyser
follows. Everything else is ``write`` (it needs an approval), never ``read``: an unknown command,
an unknown option, an abbreviated long option, a ``${...}`` form other than ``${name}``, output
redirected anywhere but ``/dev/null``, a variable exported that programs may read.

The default denials stay whatever the approval: ``rm -rf /``, ``mkfs``, power commands, fork
bombs, code piped into a shell, ``eval``, ``$'...'`` quoting, command names known only at run
time, ``LD_PRELOAD``/``BASH_ENV``/``PATH`` and the like, reads of credential files (by any path,
glob or variable that can reach them, ``/proc/*/environ`` included), cloud metadata endpoints.

Layout: ``_tables`` (rule ids, environment variables), ``_paths`` (credential files, aliases,
system folders), ``_allowlists`` (option allow-lists), ``_options`` (getopt-style parsing
against them), ``_words`` (what a word is once bash expands it), ``_walk`` (the parse walk),
``_family`` (what a validator gets and reports), ``_registry``, and one module per command family:
``text``, ``sed``, ``awk``, ``find``, ``files``, ``system``, ``network``, ``http_clients``,
``services``, ``containers``, ``databases``, ``vcs``, ``wrappers``, ``shells``,
``builtin_commands``, ``changes``.
"""

from __future__ import annotations

from executors._policy._assessment import Assessment
from executors._policy.shell._family import ShellRules
from executors._policy.shell._walk import ShellAnalysis

__all__ = ["ShellRules", "analyze_shell"]


def analyze_shell(command: str, rules: ShellRules | None = None) -> Assessment:
    """Classify ``command`` (a bash command line) and record the default rules it breaks."""
    analysis = ShellAnalysis(rules or ShellRules())
    analysis.run(command, depth=0)
    return analysis.assessment
