"""Paths: which name credential files, which are aliases the analyser does not resolve, which are
system folders or devices no task should write or remove.

A path is judged in every form it can take: as written, with ``.`` and repeated slashes removed,
by its last component (``cd /etc; cat shadow`` reads the same file as ``cat /etc/shadow``), and
where the symbolic links on it lead on this machine (``resolved``: the policy is decided where the
command runs; a link made between the decision and the run is not seen). A glob, a brace
expansion or a word only known at run time is a pattern, compared with every credential file it
could expand to.
"""

from __future__ import annotations

import fnmatch
import os
import re

#: Files whose content is a secret, matched against a path's end (so any folder, any alias).
CREDENTIAL_FILES = re.compile(
    r"(^|/)(g?shadow(-|\.bak|\.old)?|opasswd|\.pgpass|\.my\.cnf|debian\.cnf|\.netrc|\.git-credentials"
    r"|id_(rsa|dsa|ecdsa|ed25519)(_sk)?|ssh_host_\w+_key|\.aws/credentials|\.docker/config\.json|\.kube/config"
    r"|environ|mem|kcore|\.\w*_history|[^/]*\.key|[^/]*\.keytab|serviceaccount/token|\.vault-token|\.pypirc"
    r"|\.npmrc|\.s3cfg|\.boto|chap-secrets|pap-secrets|kubernetes/admin\.conf|k3s\.yaml|credentials\.tfrc\.json"
    r"|swapfile|swap\.img|global_priv\.MA[DI]|user\.MY[DI])$"
    # Folders whose every file is a secret: Docker and Kubernetes secrets, TLS private keys...
    r"|(^|/)(run/secrets|var/run/secrets|ssl/private|\.gnupg|\.ssh|kubernetes/pki|kubelet/pki"
    r"|NetworkManager/system-connections)/[^/]+$"
)
#: Names a glob or a run-time word is compared with: could it expand to one of these?
CREDENTIAL_NAMES = (
    "shadow", "shadow-", "gshadow", "shadow.bak", "opasswd", "debian.cnf", "mem", "kcore", ".bash_history",
    "server.key", ".pgpass", ".my.cnf", ".netrc", ".git-credentials", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519",
    "ssh_host_rsa_key", "credentials", "config.json", "config", "environ", "token", ".vault-token", "admin.conf",
    "swapfile",
)  # fmt: skip
#: Raw disks and memory: their content holds every file's, credential files included (what is read
#: from them; listing them, ``lsblk /dev/sda``, is fine).
RAW_DEVICES = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|md|dm-|loop|mapper/|disk/|sr|nbd|zram|mem$|kmem$|port$)")
RAW_DEVICE_NAMES = ("/dev/sda", "/dev/vda", "/dev/xvda", "/dev/nvme0n1", "/dev/mmcblk0", "/dev/md0", "/dev/dm-0",
                    "/dev/loop0", "/dev/mapper/root", "/dev/disk/by-uuid/0", "/dev/mem")  # fmt: skip
#: Folders a recursive read (``grep -r``, ``find -exec cat``) must not search: they hold credential
#: files, or are an ancestor of one that does.
CREDENTIAL_DIRS = re.compile(
    r"/|\.|\.\.|/etc(/(ssl|mysql|postgresql|ssh|security|kubernetes|NetworkManager|ppp|openvpn|letsencrypt|pki"
    r"|rancher|docker|sudoers\.d)(/.*)?)?|/root(/.*)?|/home(/[^/]+)?|~.*|/proc(/.*)?|/run(/.*)?"
    r"|/var(/(run|lib|backups)(/.*)?)?|.*/\.(ssh|aws|kube|docker|gnupg|config)(/.*)?|/dev(/.*)?"
)
#: Paths that are other names for a file: a process's root, working folder and descriptors, and
#: paths through this process's descriptor folder. Not resolved: a read through one is not a
#: ``read``. (``/dev/fd/N`` itself is a descriptor this shell opened: its redirection is judged.)
ALIAS = re.compile(r"(^|/)proc/[^/]+/(task/[^/]+/)?(root|cwd|fd|fdinfo|map_files|exe)(/|$)|^/dev/fd/(?!\d+$)")
#: What output may be redirected to and stay ``read``.
DISCARD = "/dev/null"
SYSTEM_PATHS = frozenset(
    """
    / /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run /sbin /srv /sys /tmp
    /usr /var /usr/bin /usr/lib /usr/local /usr/sbin /var/lib /var/log /snap
    """.split()
)
DEVICE_PATH = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|md|dm-|loop|mapper/|disk/|mem$|kmem$|port$|sg|sr|nbd|zram)")
DANGEROUS_WRITE_TARGETS = re.compile(
    r"^(/proc/sysrq-trigger|/proc/sys/|/sys/|/etc/(passwd|shadow|group|gshadow|sudoers)|/boot/)"
)
#: Folders whose programs are the system's own: ``/usr/bin/cat`` is cat, ``/tmp/x/cat`` is not.
TRUSTED_BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"})
_WILDCARD = re.compile(r"[*?\[]")


def normalise(path: str) -> str:
    """``path`` without repeated slashes, ``.`` components and a trailing slash (``..`` is kept:
    whether it climbs out of a symbolic link is only known on the machine)."""
    if not path:
        return path
    absolute = path.startswith("/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    joined = "/".join(parts)
    if absolute:
        return "/" + joined
    return joined or "."


def resolved(path: str) -> str | None:
    """Where ``path`` leads when a symbolic link on it goes elsewhere (``/srv/app/current`` →
    ``/etc``), looked up on this machine (where the command runs); None when no link changes it,
    or for paths the rules judge by name (``/proc``, descriptors, relative paths)."""
    if not path.startswith("/") or path.startswith(("/proc/", "/dev/fd/", "/dev/std")) or "\x00" in path:
        return None
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return None
    return real if real != os.path.normpath(normalise(path)) else None


def _forms(path: str, *, resolve: bool) -> set[str]:
    """``path`` as written, normalised, and where its symbolic links lead."""
    forms = {path, normalise(path)}
    real = resolved(path) if resolve else None
    if real is not None:
        forms.add(real)
    return forms


def names_credentials(form: str, *, pattern: bool, contents: bool = True) -> bool:
    """Does ``form`` name a credential file, or (``pattern``: a glob, or a word with run-time parts
    written as ``*``) could it expand to one? ``contents``: the file's content is read, so raw
    disks and memory count too."""
    for candidate in _forms(form, resolve=not pattern):
        if CREDENTIAL_FILES.search(candidate) or (contents and RAW_DEVICES.match(candidate)):
            return True
    if not pattern:
        return False
    return any(_pattern_names_credentials(expanded, contents=contents) for expanded in expand_braces(form))


def _pattern_names_credentials(pattern: str, *, contents: bool) -> bool:
    folded = normalise(pattern) or "*"
    if not _WILDCARD.search(folded):
        return bool(CREDENTIAL_FILES.search(folded) or (contents and RAW_DEVICES.match(folded)))
    directory = os.path.dirname(folded)
    candidates = [f"{directory}/{name}" if directory else name for name in CREDENTIAL_NAMES]
    if any(CREDENTIAL_FILES.search(c) and fnmatch.fnmatchcase(c, folded) for c in candidates):
        return True
    return contents and any(fnmatch.fnmatchcase(device, folded) for device in RAW_DEVICE_NAMES)


_BRACE_LIST = re.compile(r"\{([^{}]*)\}")
_BRACE_RANGE = re.compile(r"(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(\.\.-?\d+)?")


def expand_braces(text: str, limit: int = 64) -> list[str]:
    """The words bash's brace expansion makes of ``text`` (``a{b,c}`` → ``ab``, ``ac``; ``{1..3}``);
    a brace it cannot expand within ``limit`` words becomes ``*``."""
    words = [text]
    for _ in range(8):  # nested braces: innermost first, a few levels
        expanded: list[str] = []
        changed = False
        for word in words:
            match = _BRACE_LIST.search(word)
            if match is None:
                expanded.append(word)
                continue
            changed = True
            inner = match.group(1)
            if "," in inner:
                choices = inner.split(",")
            elif _BRACE_RANGE.fullmatch(inner):
                choices = _range(inner, limit)
            else:
                choices = ["{" + inner + "\x00"]  # not an expansion: kept (its closing brace marked)
            expanded.extend(word[: match.start()] + choice + word[match.end() :] for choice in choices)
        words = expanded
        if not changed:
            break
        if len(words) > limit:
            return [_BRACE_LIST.sub("*", text)]
    return [w.replace("\x00", "}") for w in words]


def _range(inner: str, limit: int) -> list[str]:
    start, end = inner.split("..")[:2]
    if start.lstrip("-").isdigit() and end.lstrip("-").isdigit():
        low, high = sorted((int(start), int(end)))
        values = [str(n) for n in range(low, min(high, low + limit) + 1)]
        return values if high - low < limit else ["*"]
    low, high = sorted((ord(start), ord(end)))
    return [chr(c) for c in range(low, high + 1)]


def searches_credentials(form: str, *, pattern: bool) -> bool:
    """Would a recursive read of the folder ``form`` reach credential files?"""
    if pattern or not form.startswith("/"):
        return True  # where a pattern or a relative folder leads is only known on the machine
    for path in _forms(form, resolve=True):
        if CREDENTIAL_DIRS.fullmatch(path) or ALIAS.search(path) or ".." in path.split("/"):
            return True
    return False


def alias_reason(path: str) -> str | None:
    """Why ``path`` is not a plain path the analyser can judge, or None."""
    if ALIAS.search(path):
        return f"{path} is another name for a file (a process's root, folder or descriptor)"
    if ".." in path.split("/"):
        return f"{path} climbs with '..', which symbolic links can send anywhere"
    return None


def is_system_path(text: str, *, pattern: bool) -> bool:
    """``/``, ``/*``, ``/etc``, ``~`` and the like: targets no diagnosis needs to remove."""
    if text.startswith("~") and "/" not in text.rstrip("/"):
        return True
    if text in ("*", ".", "..", "./*", "../*") or not text:
        return True
    path = normalise(text)
    if path in SYSTEM_PATHS or os.path.normpath(path) in SYSTEM_PATHS:
        return True
    if path.startswith("/") and pattern:
        first = path.split("/")[1] if path.count("/") >= 1 else ""
        if _WILDCARD.search(first or "*"):
            return True
        parent = os.path.dirname(path)
        if parent in SYSTEM_PATHS and re.fullmatch(r"[*?\[\]]+", os.path.basename(path)):
            return True
    return False


def harmful_write_target(path: str) -> bool:
    """A block device, kernel memory, /proc/sys, /sys, the account databases, /boot (also through
    a symbolic link)."""
    paths = _forms(path, resolve=True)
    return any(DEVICE_PATH.match(p) or DANGEROUS_WRITE_TARGETS.match(p) for p in paths)
