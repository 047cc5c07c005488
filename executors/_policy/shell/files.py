"""Files and archives: ls, stat, du, file, readlink, realpath; tar, gzip and unzip when they only
list or print to standard output.

Listing commands show names and sizes, so a glob among their operands is not compared with
credential files (``du -sh /var/*``); a credential file named outright still is. An archive tool
is ``read`` only in its listing or to-standard-output modes; any other mode writes files.
"""

from __future__ import annotations

from typing import ClassVar

from executors._policy.shell._allowlists import (
    COMPRESSOR_OPTIONS,
    COMPRESSOR_TO_STDOUT,
    COMPRESSORS,
    FILES,
    RUNS_PROGRAM,
    WRITES_FILE,
)
from executors._policy.shell._family import Command, Family, Judge, check_options, check_reader
from executors._policy.shell._options import table
from executors._policy.shell._words import Word, literal_word

_CHANGES_ARCHIVE = "changes an archive"
TAR = table(
    "-t -x -v -z -j -J -a -O -P -h -i -B -R -k -m -o -p -s -S -W --list --extract --get --verbose --gzip --gunzip "
    "--ungzip --bzip2 --xz --lzma --zstd --auto-compress --to-stdout --absolute-names --dereference --ignore-zeros "
    "--read-full-records --block-number --wildcards --no-wildcards --anchored --no-anchored --ignore-case "
    "--numeric-owner --totals? --utc --full-time --show-transformed-names --force-local --verify --keep-old-files "
    "--no-same-owner --no-same-permissions --occurrence? -f= --file= -C= --directory= -T= --files-from= -X= "
    "--exclude-from= --exclude= -b= --blocking-factor= --strip-components= -K= --starting-file= --format= -H= "
    "--help --version",
    reads="-T --files-from -X --exclude-from",
    refused={"-c": "writes an archive", "--create": "writes an archive", "-r": _CHANGES_ARCHIVE,
             "--append": _CHANGES_ARCHIVE, "-u": _CHANGES_ARCHIVE, "--update": _CHANGES_ARCHIVE,
             "-A": _CHANGES_ARCHIVE, "--catenate": _CHANGES_ARCHIVE, "--concatenate": _CHANGES_ARCHIVE,
             "--delete": _CHANGES_ARCHIVE, "--to-command": RUNS_PROGRAM, "-I": RUNS_PROGRAM,
             "--use-compress-program": RUNS_PROGRAM, "--checkpoint-action": RUNS_PROGRAM, "-F": RUNS_PROGRAM,
             "--info-script": RUNS_PROGRAM, "--new-volume-script": RUNS_PROGRAM, "--rsh-command": RUNS_PROGRAM,
             "--rmt-command": RUNS_PROGRAM, "-g": WRITES_FILE, "--listed-incremental": WRITES_FILE,
             "--index-file": WRITES_FILE, "--volno-file": WRITES_FILE},
)  # fmt: skip
#: tar's old-style first argument (``tar tzf x.tgz``): letters, those taking values take the next words.
_TAR_VALUED = frozenset("fCTXbHKNgLIF")
UNZIP_MODES = frozenset({"-l", "-v", "-t", "-p", "-Z", "-z", "-lv", "-ql", "-qql", "-qt", "-qqt"})


class FileFacts(Family):
    """The validator of commands that list files or show what archives hold."""

    names: ClassVar[frozenset[str]] = frozenset({*FILES, *COMPRESSORS, "tar", "unzip"})

    def validate(self, command: Command, judge: Judge) -> None:
        if command.name == "tar":
            self._tar(command, judge)
        elif command.name in COMPRESSORS:
            self._compressor(command, judge)
        elif command.name == "unzip":
            self._unzip(command, judge)
        else:
            check_reader(command, judge, FILES[command.name])

    def _tar(self, command: Command, judge: Judge) -> None:
        args = _tar_old_style(command.args)
        parsed = check_options(Command("tar", args, command.depth, command.reads_stdin), judge, TAR, files=True)
        if parsed is None:
            return
        lists = parsed.has("-t", "--list")
        prints = parsed.has("-x", "--extract", "--get") and parsed.has("-O", "--to-stdout")
        if not (lists or prints):
            judge.write("tar without -t (list) or -xO (extract to standard output) writes files")
        for archive in parsed.values("-f", "--file"):
            if archive.value is not None and ":" in archive.value and not parsed.has("--force-local"):
                judge.write(f"tar reads {archive.value} from another host (through rsh)")
            elif archive.text != "-":
                judge.reads([archive])
        judge.reads(parsed.operands)  # the members it prints can be a backup's credential files

    def _compressor(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, COMPRESSOR_OPTIONS, files=True)
        if parsed is None:
            return
        judge.reads(o for o in parsed.operands if o.text != "-")
        if parsed.operands and not parsed.has(*COMPRESSOR_TO_STDOUT):
            judge.write(f"{command.name} rewrites files in place (add -c to print to standard output)")

    def _unzip(self, command: Command, judge: Judge) -> None:
        args = command.args
        if not args or args[0].value not in UNZIP_MODES:
            judge.write("unzip extracts files (only -l, -v, -t, -p, -Z and -z are read-only)")
        options = [w for w in args[1:] if w.text.startswith("-")]
        if any(w.value not in ("-q", "-x") for w in options):
            judge.write("unzip: options after the mode are not checked by the policy")
        judge.reads(w for w in args[1:] if not w.text.startswith("-"))


def _tar_old_style(args: list[Word]) -> list[Word]:
    """``tar tzf x.tgz m`` as ``tar -t -z -f x.tgz m`` (values of the letters are the next words)."""
    if not args or args[0].text.startswith("-") or args[0].value is None:
        return args
    letters = args[0].value
    rest = list(args[1:])
    converted: list[Word] = []
    for letter in letters:
        converted.append(literal_word(f"-{letter}"))
        if letter in _TAR_VALUED and rest:
            converted.append(rest.pop(0))
    return converted + rest
