"""git: the commands that show history and state, with their option allow-lists.

Configuration given on the command line or through another repository (``-c core.pager=...``,
``-C dir``, ``--git-dir``, ``--exec-path``) can run programs, and ``--output``/``--ext-diff`` write
files or run diff programs: none of them is on the lists. A verb that creates (``git branch
NAME``, ``git tag NAME``) or changes anything is ``write``.
"""

from __future__ import annotations

from typing import ClassVar

from executors._policy.shell._family import Command, Family, Judge, check_options
from executors._policy.shell._options import OptionTable, table

_RUNS = "sets configuration or a repository whose configuration can run programs"
_GLOBAL = {"-c": _RUNS, "--config-env": _RUNS, "-C": _RUNS, "--git-dir": _RUNS, "--work-tree": _RUNS,
           "--exec-path": _RUNS, "--namespace": _RUNS, "--super-prefix": _RUNS, "-p": "starts a pager",
           "--paginate": "starts a pager", "--output": "writes a file", "--ext-diff": "runs a diff program",
           "-O": "runs a program on the files", "--open-files-in-pager": "runs a program on the files"}  # fmt: skip
_COMMON = "--no-pager -P --no-replace-objects --literal-pathspecs --no-optional-locks --no-color --color? -h --help"
_HISTORY = (
    "--oneline -n= --max-count= --since= --until= --after= --before= --author= --committer= --grep= -i --all "
    "--branches? --tags? --remotes? -p -u --patch -s --no-patch --stat? --shortstat --numstat --summary --name-only "
    "--name-status --format= --pretty? --graph --decorate? --no-decorate --abbrev-commit --abbrev? --no-merges "
    "--merges --first-parent --reverse -S= -G= --follow --date= --relative-date --full-history --topo-order "
    "--date-order --diff-filter= --skip= --no-ext-diff --no-textconv --walk-reflogs -g --left-right --cherry-pick "
    "--cherry-mark --boundary --count -z -M? -C? -L= -U= --unified= -w --ignore-all-space -b "
    "--ignore-space-change --word-diff? --minimal --patience --histogram --src-prefix= --dst-prefix= --no-prefix "
    "--exit-code --quiet --cached --staged -R --relative? --max-parents= --min-parents= --no-walk? --show-signature"
)


def _git(spec: str, reads: str = "") -> OptionTable:
    return table(f"{_COMMON} {spec}", reads=reads, numeric=True, refused=_GLOBAL)


GIT: dict[str, OptionTable] = {
    "log": _git(_HISTORY),
    "show": _git(_HISTORY),
    "diff": _git(_HISTORY),
    "rev-list": _git(_HISTORY),
    "shortlog": _git(f"{_HISTORY} -e --email --numbered --summary --group= -c --committer -w?"),
    "reflog": _git(_HISTORY),
    "status": _git(
        "-s --short -b --branch --porcelain? --long -v --verbose -u? --untracked-files? --ignored? -z "
        "--column? --no-column --ahead-behind --no-ahead-behind --renames --no-renames --show-stash"
    ),
    "rev-parse": _git(
        "--abbrev-ref? --short? --verify --git-dir --show-toplevel --is-inside-work-tree "
        "--is-inside-git-dir --is-bare-repository --symbolic --symbolic-full-name --all --branches? "
        "--tags? --remotes? --show-cdup --show-prefix -q --quiet --sq --absolute-git-dir "
        "--git-common-dir --show-superproject-working-tree --default="
    ),
    "describe": _git(
        "--tags --all --long --always --abbrev= --dirty? --broken? --match= --exclude= --contains "
        "--exact-match --first-parent --candidates="
    ),
    "blame": _git(
        "-L= -w -M? -C? -e -s -l -t -p --porcelain --line-porcelain --date= -c --root --show-name "
        "--show-number --show-email -f --reverse= --contents= --incremental -S= --since=",
        reads="--contents -S",
    ),
    "ls-files": _git(
        "-c -d -m -o -i -s -u -k -z -t -v -f --cached --deleted --modified --others --ignored --stage "
        "--unmerged --killed --directory --no-empty-directory --exclude= -x= --exclude-from= -X= "
        "--exclude-per-directory= --exclude-standard --error-unmatch --full-name --abbrev? --debug "
        "--eol --deduplicate --format=",
        reads="-X --exclude-from",
    ),
    "ls-tree": _git(
        "-d -r -t -l --long -z --name-only --name-status --object-only --full-name --full-tree --abbrev? --format="
    ),
    "cat-file": _git("-p -t -s -e --allow-unknown-type"),
    "grep": _git(
        "-n --line-number -i --ignore-case -w --word-regexp -v --invert-match -c --count -l "
        "--files-with-matches --name-only -L --files-without-match -e= -E --extended-regexp -F "
        "--fixed-strings -P --perl-regexp -h -H --cached --untracked -I --max-depth= --break --heading -p "
        "--show-function -W --function-context -A= -B= -C= --threads= --and --or --not --all-match -q "
        "--quiet -o --only-matching --column -z --null -r --recursive --no-index -a --text"
    ),
    "branch": _git(
        "-a --all -r --remotes -v -vv --verbose --list -l --show-current --contains= --no-contains= "
        "--merged? --no-merged? --sort= --format= --points-at= --column? --no-column -i --ignore-case"
    ),
    "tag": _git(
        "-l --list -n? --contains= --no-contains= --points-at= --sort= --format= --merged? --no-merged? "
        "--column? --no-column -i --ignore-case"
    ),
    "remote": _git("-v --verbose"),
    "version": _git("--build-options"),
}
_LISTING_VERBS = {"branch": ("-l", "--list"), "tag": ("-l", "--list")}


class SourceControl(Family):
    """The validator of git."""

    names: ClassVar[frozenset[str]] = frozenset({"git"})

    def validate(self, command: Command, judge: Judge) -> None:
        args = command.args
        index = 0
        while index < len(args) and args[index].text.startswith("-"):
            text = args[index].text.split("=", 1)[0]
            if text in ("--version", "--help"):
                return
            if text not in ("--no-pager", "-P", "--no-replace-objects", "--literal-pathspecs", "--no-optional-locks"):
                judge.write(f"git {args[index].text}: {_GLOBAL.get(text, 'a git option the policy does not know')}")
                return
            index += 1
        verb = args[index].value if index < len(args) else None
        if verb not in GIT:
            judge.write(f"git {verb or '(no command)'} is not a read-only git command")
            return
        rest = args[index + 1 :]
        if verb == "reflog" and rest and rest[0].value in ("expire", "delete", "exists"):
            judge.write(f"git reflog {rest[0].value} changes the reflog")
            return
        if verb == "remote" and rest and rest[0].value not in ("-v", "--verbose", "get-url"):
            judge.write(f"git remote {rest[0].text} changes or contacts remotes")
            return
        parsed = check_options(Command(f"git {verb}", rest, command.depth, command.reads_stdin), judge, GIT[verb])
        if parsed is None:
            return
        listing = _LISTING_VERBS.get(verb)
        if listing and parsed.operands and not parsed.has(*listing):
            judge.write(f"git {verb} {parsed.operands[0].text} creates a {verb}")
