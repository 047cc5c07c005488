"""The shell policy's fixed tables: rule ids, the default denials' vocabulary, and the environment
variables a command line may set. Option allow-lists per command are in ``_allowlists``; credential
paths are in ``_paths``."""

from __future__ import annotations

import re

# -- the rules an environment can lift by id (``policy.lift``) ------------------------------------
RULE_UNPARSEABLE = "shell.unparseable"
RULE_DYNAMIC = "shell.dynamic-command"
RULE_ANSI_C = "shell.ansi-c-quoting"
RULE_RM_ROOT = "shell.rm-root"
RULE_RECURSIVE_ROOT = "shell.recursive-root"
RULE_DISK = "shell.disk-wipe"
RULE_POWER = "shell.power"
RULE_DEVICE_WRITE = "shell.device-write"
RULE_EVAL = "shell.eval"
RULE_FUNCTION = "shell.function-definition"
RULE_PIPE_TO_INTERPRETER = "shell.pipe-to-interpreter"
RULE_DANGEROUS_ENV = "shell.dangerous-env"
RULE_KILL_ALL = "shell.kill-all"
RULE_REVERSE_SHELL = "shell.reverse-shell"
RULE_CREDENTIALS = "shell.credential-file"
RULE_REDIS_SCRIPTING = "redis.scripting"

#: Shell strings inside shell strings (``bash -c "bash -c '...'"``) deeper than this are refused.
MAX_NESTING = 6

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "csh", "tcsh", "rbash"})
INTERPRETERS = frozenset(
    """
    python python2 python3 pypy pypy3 perl ruby irb node nodejs php lua luajit tclsh wish Rscript R deno bun pwsh
    powershell osascript expect gdb lldb jshell groovy scala julia guile racket sbcl ocaml ghci
    """.split()
)
#: Versioned interpreter names: python3.11, perl5.36, ruby3.1 ...
VERSIONED_INTERPRETER = re.compile(r"(python|pypy|perl|ruby|php|lua|node)\d+(\.\d+)*")

DISK_WIPERS = frozenset(
    """
    mke2fs mkswap wipefs shred fdisk sfdisk cfdisk parted sgdisk gdisk blkdiscard mkdosfs mkntfs zpool lvremove
    vgremove pvremove
    """.split()
)
POWER_COMMANDS = frozenset({"shutdown", "reboot", "halt", "poweroff"})

# -- environment variables --------------------------------------------------------------------------
#: Setting one of these (as a prefix, with export/declare/env, a for loop, read...) is denied: they
#: change which program runs, what a shell runs at start-up or at each prompt, or what a program
#: loads, whatever the approval.
DANGEROUS_ENV = frozenset(
    """
    LD_PRELOAD LD_LIBRARY_PATH LD_AUDIT PATH BASH_ENV ENV IFS PROMPT_COMMAND PS0 PS1 PS2 PS3 PS4 SHELLOPTS BASHOPTS
    GLOBIGNORE PYTHONPATH PYTHONSTARTUP PYTHONHOME PERL5OPT PERL5LIB RUBYOPT NODE_OPTIONS GIT_SSH GIT_SSH_COMMAND
    GIT_EXEC_PATH LESSOPEN LESSCLOSE PAGER EDITOR VISUAL BROWSER TMPDIR GCONV_PATH HOSTALIASES LOCALDOMAIN
    RES_OPTIONS HISTFILE HOME XDG_CONFIG_HOME CURL_HOME WGETRC PYTHONWARNINGS PERL5DB SSH_ASKPASS SUDO_ASKPASS
    LOCPATH NLSPATH SYSTEMD_PAGER SYSTEMD_LESS MANPAGER MANOPT LESS LESSKEY PSQL_PAGER PSQLRC MYSQL_HISTFILE
    KUBECONFIG KUBECTL_EXTERNAL_DIFF DOCKER_HOST DOCKER_CONFIG BASH_XTRACEFD BASH_LOADABLES_PATH EXECIGNORE CDPATH
    INPUTRC TERMINFO POSIXLY_CORRECT
    """.split()
)
#: Whole families: the dynamic loader (LD_AUDIT, LD_DEBUG_OUTPUT writes files...), git
#: (GIT_EXTERNAL_DIFF and GIT_PAGER run commands, GIT_DIR points at a repository's hooks and
#: config), and bash's exported functions (BASH_FUNC_ls%%='() { ...; }' redefines ls below).
DANGEROUS_ENV_PREFIXES = ("LD_", "GIT_", "BASH_FUNC_")
#: What a command line may put in a program's environment and stay ``read``: locale, time zone,
#: terminal size, colours, and the connection settings of the database clients (a password given
#: to psql is used, not printed by it). Any other exported name needs an approval.
HARMLESS_ENV = frozenset(
    """
    LANG LANGUAGE LC_ALL LC_CTYPE LC_COLLATE LC_MESSAGES LC_NUMERIC LC_TIME LC_MONETARY TZ TERM COLUMNS LINES
    NO_COLOR SYSTEMD_COLORS SYSTEMD_URLIFY PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGCONNECT_TIMEOUT
    PGAPPNAME PGSSLMODE PGTZ PGDATESTYLE MYSQL_PWD MYSQL_HOST MYSQL_TCP_PORT REDISCLI_AUTH
    """.split()
)
#: Proxy settings are lower case and change where an HTTP client connects (a metadata endpoint).
PROXY_VARIABLE = re.compile(r"(?i).*proxy$")
#: Variables whose value is a short system token (a path, a name, a number) nothing in the task
#: line sets: ``$HOME``, ``$$``... are understood as arguments. (Not PWD: ``cd`` sets it to any
#: folder, blanks and globs included.)
HARMLESS_VARIABLES = frozenset(
    """
    HOME USER LOGNAME HOSTNAME UID EUID PPID BASHPID RANDOM SRANDOM SECONDS LINENO HOSTTYPE OSTYPE
    MACHTYPE SHLVL BASH_VERSION EPOCHSECONDS EPOCHREALTIME ? $ ! # -
    """.split()
)


def dangerous_env(name: str) -> bool:
    """Is ``name`` a variable whose value changes what programs run or load?"""
    return name in DANGEROUS_ENV or name.startswith(DANGEROUS_ENV_PREFIXES)


def harmless_export(name: str) -> bool:
    """May ``name`` be put into a program's environment by a ``read`` command?"""
    return name in HARMLESS_ENV or name.startswith("LC_")


def harmless_shell_variable(name: str) -> bool:
    """May a ``read`` command line set ``name`` as a shell variable (``x=1``)? Lower-case names other
    than the proxy settings: no program reads them from its environment."""
    return bool(re.fullmatch(r"[a-z_][a-z0-9_]*", name)) and not PROXY_VARIABLE.fullmatch(name)
