"""Network diagnostics: ss, netstat, ip, ping, traceroute, dig, nslookup, nc -z, tcpdump, ethtool,
conntrack, and the firewall listings.

``ip`` abbreviates its objects and verbs (``ip a a`` is ``ip address add``): the object is found
the way iproute2 finds it (the first in its own order that the word begins), and only the
showing verbs, written in full, are ``read``. ``ss -K`` closes sockets; ``nc`` is ``read`` only as
a port probe (``-z``) and hands no shell to the network (``-e``, denied). Firewall tools are
``read`` only when listing.
"""

from __future__ import annotations

import re
from typing import ClassVar

from executors._policy.shell._allowlists import NETWORK, SHOWS_WITHOUT_OPERANDS
from executors._policy.shell._family import Command, Family, Judge, check_options, check_reader
from executors._policy.shell._options import table
from executors._policy.shell._tables import RULE_REVERSE_SHELL

#: iproute2's objects, in the order ``ip`` tries them for an abbreviation (ip/ip.c).
IP_OBJECTS = (
    "address addrlabel maddress route rule neighbor neighbour ntable ntbl link l2tp fou ila macsec tunnel tunl tuntap "
    "tap token tcpmetrics tcp_metrics monitor xfrm mroute mrule netns netconf vrf sr nexthop mptcp ioam help stats"
).split()
#: The objects ``read`` may show, and the verbs that show them (none given: show).
IP_READ_VERBS = {
    **{name: frozenset({"show", "list", "lst"}) for name in (
        "address", "addrlabel", "maddress", "rule", "ntable", "ntbl", "link", "tunnel", "tunl", "tuntap", "tap",
        "mroute", "netconf", "nexthop")},
    "route": frozenset({"show", "list", "lst", "get"}),
    "neighbor": frozenset({"show", "list", "lst", "get"}),
    "neighbour": frozenset({"show", "list", "lst", "get"}),
    "netns": frozenset({"list", "list-id", "identify", "pids"}),
}  # fmt: skip
_IP_FLAGS = frozenset(
    "-4 -6 -0 -s -stats -statistics -d -details -o -oneline -r -resolve -a -all -br -brief -j -json -p -pretty -h "
    "-human -human-readable -t -timestamp -ts -tshort -iec -c -color -N -Numeric -V -Version -help".split()
)
_IP_VALUED = frozenset({"-f", "-family", "-n", "-netns", "-l", "-loops", "-rc", "-rcvbuf"})
NC = table("-z -v -n -u -4 -6 -d -w= -i= -s= -p=")
_NC_CODE = re.compile(r"-[A-Za-z]*[ec]|--(exec|sh-exec|lua-exec)(=.*)?")
ETHTOOL_SHOW = frozenset(
    "-i --driver -S --statistics -k --show-features --show-offload -g --show-ring -a --show-pause -c --show-coalesce "
    "-l --show-channels -T --show-time-stamping -P --show-permaddr --show-eee --show-fec --show-priv-flags -m "
    "--dump-module-eeprom --module-info -n -u --show-nfc --show-ntuple -x --show-rxfh-indir --show-rxfh".split()
)
CONNTRACK = table(
    "-L -G -C -S -E --dump --get --count --stats --event -p= -s= -d= -r= -q= -f= -m= -t= -u= -o= -n -g -e= -z? -c= "
    "--proto= --src= --dst= --reply-src= --reply-dst= --orig-src= --orig-dst= --sport= --dport= --family= --mark= "
    "--timeout= --status= --output= --src-nat --dst-nat --any-nat --zone= --label= --buffer-size= -h -V --help "
    "--version",
    refused={"-D": "deletes connections", "--delete": "deletes connections", "-F": "flushes the table",
             "--flush": "flushes the table", "-U": "changes connections", "--update": "changes connections",
             "-I": "creates connections", "--create": "creates connections"},
)  # fmt: skip
_CONNTRACK_SHOWS = ("-L", "-G", "-C", "-S", "-E", "--dump", "--get", "--count", "--stats", "--event")
IPTABLES_LIST = table(
    "-L? -S? --list? --list-rules? -n -v -x -t= --table= -w? --wait? --line-numbers --numeric --verbose --exact -4 -6 "
    "-h -V --help --version",
    refused={"-M": "runs a program to load modules", "--modprobe": "runs a program to load modules"},
)
_INTERACTIVE = "reads commands interactively"
NFT = table("-a -n -s -j -N -S -y -p -T -t -c --handle --numeric --stateless --json --reversedns --service "
            "--numeric-priority --numeric-protocol --numeric-time --terse --check --help --version",
            refused={"-f": "loads rules from a file", "--file": "loads rules from a file",
                     "-i": _INTERACTIVE, "--interactive": _INTERACTIVE})  # fmt: skip


class NetworkDiagnostics(Family):
    """The validator of network diagnostics."""

    names: ClassVar[frozenset[str]] = frozenset(
        {*NETWORK, *SHOWS_WITHOUT_OPERANDS, "ip", "nslookup", "nc", "ncat", "netcat", "socat", "ethtool",
         "conntrack", "iptables", "ip6tables", "nft"}
    )  # fmt: skip

    def validate(self, command: Command, judge: Judge) -> None:
        name = command.name
        if name == "ip":
            self._ip(command, judge)
        elif name == "nslookup":
            self._nslookup(command, judge)
        elif name in ("nc", "ncat", "netcat", "socat"):
            self._netcat(command, judge)
        elif name == "ethtool":
            self._ethtool(command, judge)
        elif name == "conntrack":
            parsed = check_options(command, judge, CONNTRACK)
            if parsed is not None and (not parsed.has(*_CONNTRACK_SHOWS) or parsed.has("-z")):
                judge.write("conntrack without -L/-G/-C/-S/-E (or with -z) changes the connection table")
        elif name in ("iptables", "ip6tables"):
            parsed = check_options(command, judge, IPTABLES_LIST)
            if parsed is not None and not parsed.has("-L", "-S", "--list", "--list-rules"):
                judge.write(f"{name} without -L or -S changes the firewall")
        elif name == "nft":
            parsed = check_options(command, judge, NFT)
            # nft joins its operands into one text of ';'-separated commands.
            texts = [o.value for o in parsed.operands] if parsed is not None else []
            if parsed is not None and (
                not texts or texts[0] != "list" or any(t is None or ";" in t or "\n" in t for t in texts)
            ):
                judge.write("nft commands other than one 'list' change the firewall")
        elif name in SHOWS_WITHOUT_OPERANDS:
            options, most = SHOWS_WITHOUT_OPERANDS[name]
            parsed = check_options(command, judge, options)
            if parsed is not None and len(parsed.operands) > most:
                judge.write(f"{name} with operands changes the network configuration")
        else:
            parsed = check_reader(command, judge, NETWORK[name])
            batch = {"dig": ("-f",), "mtr": ("-F", "--filename")}.get(name, ())
            if parsed is not None and batch and parsed.has(*batch):
                judge.write(f"{name} sends every line of a file as a query (to a server the task names)")

    def _ip(self, command: Command, judge: Judge) -> None:
        args = command.args
        index = 0
        while index < len(args) and args[index].text.startswith("-"):
            text = args[index].value
            if text in ("-b", "-batch", "-force"):
                judge.write("ip -batch runs the commands of a file")
                return
            if text in _IP_VALUED:
                index += 2
            elif text in _IP_FLAGS:
                index += 1
            else:
                judge.write(f"ip: {args[index].text} is not an option the policy knows to be read-only")
                return
        if index >= len(args):
            judge.write("ip without an object")
            return
        word = args[index].value
        obj = next((o for o in IP_OBJECTS if word and o.startswith(word)), None)
        if obj is None or obj not in IP_READ_VERBS:
            judge.write(f"ip {args[index].text} is not an object the policy lets read")
            return
        rest = args[index + 1 :]
        if obj == "netns" and rest and rest[0].value == "exec":
            judge.write("ip netns exec runs a command in another network namespace")
            judge.argv(rest[2:], command.depth, reads_stdin=command.reads_stdin)
            return
        if rest and rest[0].value not in IP_READ_VERBS[obj]:
            judge.write(f"ip {obj} {rest[0].text} is not a showing verb (only show, list, get written in full)")
            return
        for word_after in rest[1:]:
            if word_after.value is None:
                judge.write(f"ip: {word_after.text} is only known at run time")
                return

    def _nslookup(self, command: Command, judge: Judge) -> None:
        operands = []
        for word in command.args:
            if word.value is None:
                judge.write(f"nslookup: {word.text} is only known at run time")
                return
            if word.value.startswith("-") and word.value != "-":
                if not re.fullmatch(r"-[a-z0-9]+(=[\w.:-]*)?", word.value):
                    judge.write(f"nslookup: {word.text} is not an option the policy reads")
                    return
            else:
                operands.append(word)
        if not operands or len(operands) > 2:
            judge.write("nslookup without a name to look up reads commands from its input")

    def _netcat(self, command: Command, judge: Judge) -> None:
        name = command.name
        texts = [w.text for w in command.args]
        if any(_NC_CODE.fullmatch(t) for t in texts):
            judge.deny(RULE_REVERSE_SHELL, f"{name} -e/-c hands a shell to the network")
            return
        if name == "socat":
            if any(re.search(r"(?i)\b(exec|system):", t) for t in texts):
                judge.deny(RULE_REVERSE_SHELL, "socat EXEC/SYSTEM hands a shell to the network")
                return
            judge.write("socat sends data or listens")
            return
        parsed = check_options(command, judge, NC)
        if parsed is None:
            return
        if not parsed.has("-z"):
            judge.write(f"{name} without -z sends data or listens")
            return
        if not parsed.operands or any(o.value is None for o in parsed.operands):
            judge.write(f"{name}: the host or ports are only known at run time")
            return
        ports = parsed.operands[1:]
        if not all(re.fullmatch(r"[\d,-]+", p.value or "") for p in ports):
            judge.write(f"{name}: {' '.join(p.text for p in ports)} are not ports")
        # A probe connects and closes: literal metadata addresses are refused, names are not looked up.
        judge.urls([str(parsed.operands[0].value)], resolve=False)

    def _ethtool(self, command: Command, judge: Judge) -> None:
        args = [w for w in command.args if w.value != "--json"]
        if any(w.value is None for w in args):
            judge.write("ethtool: an argument only known at run time")
            return
        texts = [str(w.value) for w in args]
        showing = (
            (len(texts) == 1 and not texts[0].startswith("-"))  # ethtool DEVICE: its settings
            or (len(texts) == 2 and texts[0] in ETHTOOL_SHOW and not texts[1].startswith("-"))
            or texts in (["-h"], ["--help"], ["--version"])
        )
        if not showing:
            judge.write("ethtool with these options changes the network interface")
