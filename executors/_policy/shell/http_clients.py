"""Clients that fetch from servers: curl, wget, openssl's certificate tools.

``read`` is a GET (or HEAD, OPTIONS) whose answer goes to standard output: sending data, saving
files, reading options or headers from files, following redirects (to hosts the policy cannot
check: a metadata endpoint) need an approval. Every URL, proxy and resolver address is checked
against the metadata endpoints and the environment's host lists (``executors._policy.http``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from executors._policy.shell._allowlists import RUNS_PROGRAM, WRITES_FILE
from executors._policy.shell._family import Command, Family, Judge, check_options
from executors._policy.shell._options import table
from executors._policy.shell._paths import DISCARD
from executors._policy.shell._words import Word, literal_word

_SENDS = frozenset({"-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--data-urlencode", "-F", "--form",
                    "--form-string", "--json", "-T", "--upload-file"})  # fmt: skip
_PRINTS = frozenset({"-o", "--output", "-D", "--dump-header", "--trace", "--trace-ascii", "--stderr"})
_PROXIES = frozenset({"-x", "--proxy", "--preproxy", "--socks4", "--socks4a", "--socks5", "--socks5-hostname",
                      "--doh-url"})  # fmt: skip
CURL = table(
    "-s --silent -S --show-error -f --fail --fail-with-body --fail-early -i --include -I --head -v --verbose -k "
    "--insecure --compressed -G --get -4 -6 --ipv4 --ipv6 -0 --http1.0 --http1.1 --http2 --http2-prior-knowledge "
    "--http3 -N --no-buffer --no-keepalive --no-progress-meter -# --progress-bar -q --disable --raw --path-as-is -g "
    "--globoff --tlsv1 --tlsv1.0 --tlsv1.1 --tlsv1.2 --tlsv1.3 --tcp-nodelay --tcp-fastopen -Z --parallel "
    "--parallel-immediate --ssl-no-revoke -L --location --location-trusted -n --netrc --netrc-optional "
    "--no-sessionid --no-alpn --proxy-insecure --ignore-content-length --trace-time -: --next --help --version -V "
    "-m= --max-time= --connect-timeout= -H= --header= -A= --user-agent= -e= --referer= -u= --user= -x= --proxy= "
    "--noproxy= -w= --write-out= -X= --request= -r= --range= -b= --cookie= --retry= --retry-delay= "
    "--retry-max-time= --retry-all-errors --retry-connrefused --max-redirs= --limit-rate= -Y= --speed-limit= -y= "
    "--speed-time= --expect100-timeout= --keepalive-time= --interface= --dns-servers= --dns-interface= "
    "--dns-ipv4-addr= --dns-ipv6-addr= --doh-url= --resolve= --connect-to= --url= --cacert= --capath= -E= --cert= "
    "--key= --cert-type= --key-type= --pass= --ciphers= --tls13-ciphers= --proxy-user= -U= --preproxy= --socks4= "
    "--socks4a= --socks5= --socks5-hostname= --proxy-header= --unix-socket= --abstract-unix-socket= "
    "--oauth2-bearer= --aws-sigv4= --netrc-file= --local-port= --max-filesize= --request-target= --proto= "
    "--proto-redir= --proto-default= --crlfile= --pinnedpubkey= --tls-max= --curves= -z= --time-cond= "
    "-o= --output= -D= --dump-header= --trace= --trace-ascii= --stderr= "
    "-d= --data= --data-raw= --data-binary= --data-ascii= --data-urlencode= -F= --form= --form-string= --json= -T= "
    "--upload-file= -K= --config=",
    reads="-K --config",
    refused={"-O": WRITES_FILE, "--remote-name": WRITES_FILE, "--remote-name-all": WRITES_FILE,
             "-J": WRITES_FILE, "--remote-header-name": WRITES_FILE, "-c": WRITES_FILE, "--cookie-jar": WRITES_FILE,
             "--libcurl": WRITES_FILE, "--etag-save": WRITES_FILE, "--hsts": WRITES_FILE, "--alt-svc": WRITES_FILE,
             "--create-dirs": WRITES_FILE, "--output-dir": WRITES_FILE, "--xattr": WRITES_FILE,
             "--variable": "reads files or the environment into variables", "--engine": "loads a crypto engine",
             "-Q": "sends FTP commands", "--quote": "sends FTP commands"},
)  # fmt: skip
WGET = table(
    "-q --quiet -v --verbose -nv --no-verbose -S --server-response --spider -4 -6 --inet4-only --inet6-only "
    "--no-check-certificate --no-proxy -d --debug --no-dns-cache --no-cache --ignore-length --https-only "
    "--content-on-error --show-progress --progress= -O= --output-document= -T= --timeout= --dns-timeout= "
    "--connect-timeout= --read-timeout= -t= --tries= --header= -U= --user-agent= --user= --password= --http-user= "
    "--http-password= --ca-certificate= --ca-directory= --certificate= --private-key= --max-redirect= "
    "--bind-address= --limit-rate= -w= --wait= --waitretry= --referer= --method= --prefer-family= "
    "--secure-protocol= --local-encoding= --remote-encoding= --help --version",
    refused={"-o": WRITES_FILE, "--output-file": WRITES_FILE, "-a": WRITES_FILE, "--append-output": WRITES_FILE,
             "-i": "fetches the URLs listed in a file", "--input-file": "fetches the URLs listed in a file",
             "-P": WRITES_FILE, "--directory-prefix": WRITES_FILE, "-r": WRITES_FILE, "--recursive": WRITES_FILE,
             "-m": WRITES_FILE, "--mirror": WRITES_FILE, "-p": WRITES_FILE, "--page-requisites": WRITES_FILE,
             "-x": WRITES_FILE, "--force-directories": WRITES_FILE, "-c": WRITES_FILE, "--continue": WRITES_FILE,
             "-N": WRITES_FILE, "--timestamping": WRITES_FILE, "--post-data": "sends data",
             "--post-file": "sends a file", "--body-data": "sends data", "--body-file": "sends a file",
             "-e": "runs wgetrc commands", "--execute": "runs wgetrc commands", "--save-cookies": WRITES_FILE,
             "--load-cookies": "sends cookies from a file", "--use-askpass": RUNS_PROGRAM,
             "--config": "reads options from a file", "-b": "goes to the background",
             "--background": "goes to the background", "--delete-after": WRITES_FILE},
)  # fmt: skip
#: openssl subcommands that only read, with their single-dash options: flags and valued ones.
OPENSSL = {
    "version": (frozenset("-a -v -b -o -f -p -d -e -c -r".split()), frozenset()),
    "x509": (frozenset("-noout -text -subject -issuer -dates -enddate -startdate -fingerprint -serial -hash "
                       "-subject_hash -issuer_hash -email -ocsp_uri -pubkey -modulus -purpose -ocspid -alias -sha1 "
                       "-sha256 -md5 -nocert".split()),
             frozenset("-in -inform -nameopt -ext -checkend -certopt".split())),
    "s_client": (frozenset("-showcerts -brief -quiet -tls1_2 -tls1_3 -no_tls1 -no_tls1_1 -no_tls1_2 -no_tls1_3 "
                           "-status -verify_return_error -prexit -crlf -ign_eof -no_ign_eof -debug -state -msg "
                           "-tlsextdebug -4 -6".split()),
                 frozenset("-connect -servername -CAfile -CApath -verify -starttls -alpn -cert -key -name "
                           "-verify_hostname -cipher -ciphersuites".split())),
    "verify": (frozenset("-crl_check -verbose -show_chain -x509_strict -partial_chain".split()),
               frozenset("-CAfile -CApath -untrusted -purpose".split())),
    "ciphers": (frozenset("-v -V -s -tls1_2 -tls1_3 -stdname".split()), frozenset()),
}  # fmt: skip


class NetworkClients(Family):
    """The validator of curl, wget and openssl."""

    names: ClassVar[frozenset[str]] = frozenset({"curl", "wget", "openssl"})

    def validate(self, command: Command, judge: Judge) -> None:
        if command.name == "curl":
            self._curl(command, judge)
        elif command.name == "wget":
            self._wget(command, judge)
        else:
            self._openssl(command, judge)

    def _curl(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, CURL)
        if parsed is None:
            return
        urls = [o for o in parsed.operands]
        for option, value in parsed.options:
            if value is None:
                continue
            text = value.value
            if option in ("-X", "--request") and (text or "").upper() not in ("GET", "HEAD", "OPTIONS"):
                judge.write(f"curl {text or 'a run-time'} request")
            elif option in _SENDS:
                judge.write("curl sends data")
                judge.reads(_curl_files(option, value))
            elif option in _PRINTS and text not in (DISCARD, "-"):
                judge.write(f"curl {option} writes {value.text}")
            elif option in ("-K", "--config"):
                judge.write("curl -K reads its options from a file")
            elif option in ("-H", "--header", "--proxy-header") and value.text.startswith("@"):
                judge.write("curl sends headers read from a file")
                judge.reads([value.tail(1)])
            elif option in ("-b", "--cookie") and "=" not in value.text:
                judge.write("curl sends the cookies of a file")
                judge.reads([value])
            elif option in ("-w", "--write-out") and "%output{" in value.text:
                judge.write("curl --write-out %output{} writes a file")
            elif option == "--url":
                urls.append(value)
            elif option in _PROXIES:
                urls.append(literal_word("http://" + re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", value.text)))
            elif option in ("--resolve", "--connect-to"):
                # host:port:ADDRESS[,ADDRESS] and HOST1:PORT1:HOST2:PORT2 send the request elsewhere
                parts = value.text.lstrip("+-").split(":")
                if len(parts) > 2:
                    urls.extend(literal_word(f"http://{address}/") for address in parts[2].split(",") if address)
        if parsed.has("-L", "--location", "--location-trusted"):
            judge.write("curl -L follows redirects to hosts the policy cannot check (a metadata endpoint); "
                        "an api task with follow_redirects checks every hop")  # fmt: skip
        self._urls(command.name, urls, judge)

    def _wget(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, WGET)
        if parsed is None:
            return
        outputs = [v.value for v in parsed.values("-O", "--output-document")]
        if not (parsed.has("--spider") or (outputs and all(o in ("-", DISCARD) for o in outputs))):
            judge.write("wget saves a file (use -O- or --spider)")
        for method in parsed.values("--method"):
            if (method.value or "").upper() not in ("GET", "HEAD", "OPTIONS"):
                judge.write(f"wget {method.text} request")
        if [v.value for v in parsed.values("--max-redirect")] != ["0"]:
            judge.write("wget follows redirects to hosts the policy cannot check; add --max-redirect=0")
        self._urls(command.name, parsed.operands, judge)

    def _urls(self, name: str, words: list[Word], judge: Judge) -> None:
        # A URL's brackets and braces are curl's own globbing: the text is the URL (unless a file
        # name matches it as a shell glob, which no URL's "://" can).
        known = [w.values[0] for w in words if w.values is not None and len(w.values) == 1 and not w.splits]
        if len(known) < len(words):
            judge.write(f"{name} to a URL built at run time")
        judge.urls(u for u in known if u)

    def _openssl(self, command: Command, judge: Judge) -> None:
        args = command.args
        subcommand = args[0].value if args else None
        if subcommand not in OPENSSL:
            judge.write(f"openssl {args[0].text if args else ''} is not a read-only openssl command")
            return
        flags, valued = OPENSSL[subcommand]
        index = 1
        operands = []
        while index < len(args):
            word = args[index]
            text = word.value
            index += 1
            if text is None:
                judge.write(f"openssl: {word.text} is only known at run time")
                return
            if text in flags:
                continue
            if text in valued and index < len(args):
                value = args[index]
                index += 1
                if text == "-in":
                    judge.reads([value])
                elif text == "-connect":
                    judge.urls([f"https://{value.text}/"])
                continue
            if text.startswith("-"):
                judge.write(f"openssl {subcommand} {text} is not an option the policy knows to be read-only")
                return
            operands.append(word)
        if subcommand == "verify":
            judge.reads(operands)
        elif operands and subcommand != "ciphers":
            judge.write(f"openssl {subcommand}: unexpected {operands[0].text}")


def _curl_files(option: str, value: Word) -> list[Word]:
    """The files a curl data option reads (``-d @file``, ``-F name=@file``, ``-T file``)."""
    text = value.text
    if option in ("-T", "--upload-file"):
        return [value]
    if option in ("-F", "--form"):
        match = re.search(r"=[@<]([^;]*)", text)
        return [literal_word(match.group(1))] if match else []
    if option == "--data-urlencode":
        name, at, path = text.partition("@")
        return [literal_word(path)] if at and "=" not in name else []
    if text.startswith("@") and option != "--data-raw":
        return [value.tail(1)]
    return []
