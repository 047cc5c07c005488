"""Option allow-lists of the read-only commands whose arguments are plain options and operands.

Each entry is every option that command may be given and stay ``read`` (GNU coreutils, util-linux,
procps, iproute2 spellings); an option that is missing is not understood, and the command needs
an approval. ``refused`` names the known options left out on purpose, so the approver reads why.
Commands with a grammar of their own (sed, awk, find, ip, curl, kubectl, systemctl...) keep their
tables beside their validator.
"""

from __future__ import annotations

from executors._policy.shell._family import Reader
from executors._policy.shell._options import OptionTable, table

# The tables are laid out by hand (one command per entry, options in their manuals' order).
# fmt: off
_HELP = "--help --version"
WRITES_FILE = "writes a file"
RUNS_PROGRAM = "runs a program it is given"

# -- text filters: they read files (or standard input) and print ---------------------------------
TEXT: dict[str, Reader] = {
    "cat": Reader(table(f"-A -b -e -E -n -s -t -T -u -v --show-all --number-nonblank --show-ends --number "
                        f"--squeeze-blank --show-tabs --show-nonprinting {_HELP}")),
    "tac": Reader(table(f"-b -r -s= --before --regex --separator= {_HELP}")),
    "head": Reader(table(f"-c= -n= -q -v -z --bytes= --lines= --quiet --silent --verbose --zero-terminated {_HELP}",
                         numeric=True)),
    "tail": Reader(table(f"-c= -n= -f -F -q -v -z -s= --bytes= --lines= --follow? --retry --pid= --quiet --silent "
                         f"--verbose --sleep-interval= --max-unchanged-stats= --zero-terminated {_HELP}",
                         numeric=True)),
    "cut": Reader(table(f"-b= -c= -f= -d= -n -s -z --bytes= --characters= --fields= --delimiter= --complement "
                        f"--only-delimited --output-delimiter= --zero-terminated {_HELP}")),
    "sort": Reader(table(
        f"-b -d -f -g -h -i -M -n -R -r -V -c -C -m -s -u -z -k= -t= -S= --ignore-leading-blanks --dictionary-order "
        f"--ignore-case --general-numeric-sort --human-numeric-sort --ignore-nonprinting --month-sort --numeric-sort "
        f"--random-sort --reverse --version-sort --check? --merge --stable --unique --zero-terminated --key= "
        f"--field-separator= --buffer-size= --parallel= --sort= --debug --batch-size= --files0-from= "
        f"--random-source= {_HELP}",
        reads="--files0-from --random-source",
        refused={"-o": WRITES_FILE, "--output": WRITES_FILE, "--compress-program": RUNS_PROGRAM,
                 "-T": "writes temporary files into a folder it is given",
                 "--temporary-directory": "writes temporary files into a folder it is given"},
    )),
    "uniq": Reader(table(f"-c -d -D -f= -i -s= -u -z -w= --count --repeated --all-repeated? --group? --skip-fields= "
                         f"--skip-chars= --ignore-case --unique --zero-terminated --check-chars= {_HELP}"),
                   max_files=1),
    "wc": Reader(table(f"-c -m -l -L -w --bytes --chars --lines --max-line-length --words --files0-from= --total= "
                       f"{_HELP}", reads="--files0-from")),
    "tr": Reader(table(f"-c -C -d -s -t --complement --delete --squeeze-repeats --truncate-set1 {_HELP}"),
                 operands="none"),
    "paste": Reader(table(f"-d= -s -z --delimiters= --serial --zero-terminated {_HELP}")),
    "join": Reader(table(f"-a= -e= -i -j= -o= -t= -v= -1= -2= -z --check-order --nocheck-order --header "
                         f"--ignore-case --zero-terminated {_HELP}")),
    "comm": Reader(table(f"-1 -2 -3 -z --check-order --nocheck-order --output-delimiter= --total --zero-terminated "
                         f"{_HELP}")),
    "diff": Reader(table(
        f"-q -s -c -C= -u -U= -e -n -y -W= -t -T -a -b -B -E -i -I= -w -Z -r -N -p -F= -d -x= -X= -S= --brief "
        f"--report-identical-files --context? --unified? --ed --rcs --side-by-side --width= --left-column "
        f"--suppress-common-lines --show-c-function --show-function-line= --label= --expand-tabs --initial-tab "
        f"--tabsize= --suppress-blank-empty --text --ignore-case --ignore-tab-expansion --ignore-trailing-space "
        f"--ignore-space-change --ignore-all-space --ignore-blank-lines --ignore-matching-lines= --strip-trailing-cr "
        f"--recursive --new-file --unidirectional-new-file --exclude= --exclude-from= --starting-file= --minimal "
        f"--speed-large-files --horizon-lines= --color? --normal --no-dereference --from-file= --to-file= "
        f"--ignore-file-name-case --no-ignore-file-name-case {_HELP}",
        reads="-X --exclude-from --from-file --to-file",
        refused={"-l": "runs pr on its output", "--paginate": "runs pr on its output"},
    )),
    "cmp": Reader(table(f"-b -i= -l -n= -s --print-bytes --ignore-initial= --verbose --bytes= --quiet --silent "
                        f"{_HELP}")),
    "column": Reader(table(
        "-t -n= -O= -N= -l= -E= -d -e -H= -R= -T= -W= -L -J -r= -i= -p= -c= -o= -s= -x -h -V --table --table-name= "
        "--table-order= --table-columns= --table-columns-limit= --table-noextreme= --table-noheadings "
        "--table-header-repeat --table-hide= --table-right= --table-truncate= --table-wrap= --keep-empty-lines "
        "--json --tree= --tree-id= --tree-parent= --output-width= --output-separator= --separator= --fillrows "
        "--help --version"
    )),
    "fold": Reader(table(f"-b -s -w= --bytes --spaces --width= {_HELP}")),
    "fmt": Reader(table(f"-c -p= -s -t -u -w= -g= --crown-margin --prefix= --split-only --tagged-paragraph "
                        f"--uniform-spacing --width= --goal= {_HELP}", numeric=True)),
    "expand": Reader(table(f"-i -t= --initial --tabs= {_HELP}", numeric=True)),
    "unexpand": Reader(table(f"-a -t= --all --first-only --tabs= {_HELP}")),
    "rev": Reader(table("-h -V --help --version")),
    "nl": Reader(table(f"-b= -d= -f= -h= -i= -l= -n= -p -s= -v= -w= --body-numbering= --section-delimiter= "
                       f"--footer-numbering= --header-numbering= --line-increment= --join-blank-lines= "
                       f"--number-format= --no-renumber --number-separator= --starting-line-number= "
                       f"--number-width= {_HELP}")),
    "od": Reader(table(f"-A= -j= -N= -S= -t= -v -w? -a -b -c -d -f -i -l -o -s -x --address-radix= --endian= "
                       f"--skip-bytes= --read-bytes= --strings? --format= --output-duplicates --width? "
                       f"--traditional {_HELP}")),
    "hexdump": Reader(table("-b -c -C -d -o -x -L? -e= -f= -n= -s= -v -h -V --one-byte-octal --one-byte-char "
                            "--canonical --two-bytes-decimal --two-bytes-octal --two-bytes-hex --color? --format= "
                            "--format-file= --length= --skip= --no-squeezing --help --version",
                            reads="-f --format-file")),
    "strings": Reader(table("-a -d -f -n= -t= -w -o -T= -e= -U= -s= -h -v -V --all --data --print-file-name --bytes= "
                            "--radix= --include-all-whitespace --target= --encoding= --unicode= --output-separator= "
                            "--help --version", numeric=True)),
    "base64": Reader(table(f"-d -i -w= --decode --ignore-garbage --wrap= {_HELP}"), max_files=1),
    "base32": Reader(table(f"-d -i -w= --decode --ignore-garbage --wrap= {_HELP}"), max_files=1),
    "numfmt": Reader(table(f"-d= -z --debug --delimiter= --field= --format= --from= --from-unit= --grouping "
                           f"--header? --invalid= --padding= --round= --suffix= --to= --to-unit= --zero-terminated "
                           f"{_HELP}"), operands="none"),
    "less": Reader(table()),
    "more": Reader(table()),
    **{
        name: Reader(table(f"-b -c -t -z -w --binary --check --tag --text --zero --ignore-missing --quiet --status "
                           f"--strict --warn {_HELP}"))
        for name in ("md5sum", "sha1sum", "sha224sum", "sha256sum", "sha384sum", "sha512sum")
    },
    "b2sum": Reader(table(f"-b -c -l= -t -z -w --binary --check --length= --tag --text --zero --ignore-missing "
                          f"--quiet --status --strict --warn {_HELP}")),
    "cksum": Reader(table(f"-a= -c -l= -z -w --algorithm= --check --length= --tag --untagged --zero --ignore-missing "
                          f"--quiet --status --strict --warn --debug --raw --base64 {_HELP}")),
    **{name: Reader(table(f"-f -q -v --force --quiet --verbose {_HELP}")) for name in ("zcat", "bzcat", "xzcat")},
    "zstdcat": Reader(table("-f -q -v --force --quiet --verbose --help --version")),
}
_GREP = (
    "-E -F -G -P -e= -f= -i -y --ignore-case --no-ignore-case -v -w -x -c --color? --colour? -L -l -m= -o -q -s -b -H "
    "-h --label= -n -T -Z -z -A= -B= -C= -a --binary-files= -D= -d= --exclude= --exclude-from= --exclude-dir= "
    "--include= -r -R -U --line-buffered --null-data --null --extended-regexp --fixed-strings --basic-regexp "
    "--perl-regexp --regexp= --file= --word-regexp --line-regexp --count --files-without-match --files-with-matches "
    "--max-count= --only-matching --quiet --silent --no-messages --byte-offset --with-filename --no-filename "
    "--line-number --initial-tab --text --devices= --directories= --recursive --dereference-recursive --binary "
    "--context= --after-context= --before-context= --invert-match --help --version"
)
GREP = Reader(
    table(_GREP, numeric=True, reads="-f --file --exclude-from"),
    operands="pattern",
    pattern_options=frozenset({"-e", "-f", "--regexp", "--file"}),
)
#: ripgrep: ``--pre`` and ``--hostname-bin`` run programs, ``-z`` runs decompressors.
RIPGREP = Reader(
    table(
        "-e= -f= -i -s -S -v -w -x -c -l -L -n -N -o -q -H -I -r= -m= -A= -B= -C= -g= -t= -T= -u -uu -a -F -P -U "
        "--regexp= --file= --ignore-case --case-sensitive --smart-case --invert-match --word-regexp --line-regexp "
        "--count --count-matches --files-with-matches --files-without-match --line-number --no-line-number "
        "--only-matching --quiet --with-filename --no-filename --glob= --iglob= --type= --type-not= --hidden "
        "--no-ignore --max-count= --after-context= --before-context= --context= --fixed-strings --json --color= "
        "--no-heading --heading --max-depth= --max-filesize= --sort= --sortr= --stats --text --vimgrep --trim "
        "--files --column --no-messages --help --version",
        reads="-f --file",
        refused={"--pre": RUNS_PROGRAM, "--hostname-bin": RUNS_PROGRAM,
                 "-z": "runs decompression programs", "--search-zip": "runs decompression programs"},
    ),
    operands="pattern",
    pattern_options=frozenset({"-e", "-f", "--regexp", "--file"}),
)

# -- files: names, sizes, types, archives' lists --------------------------------------------------
_LS = (
    "-a -A -b -B -c -C -d -D -f -F -g -G -h -H -i -k -l -L -m -n -N -o -p -q -Q -r -R -s -S -t -u -U -v -x -X -Z -1 "
    "-I= -T= -w= --all --almost-all --author --escape --block-size= --ignore-backups --color? --directory --dired "
    "--classify? --file-type --format= --full-time --group-directories-first --no-group --human-readable --si "
    "--dereference-command-line --dereference-command-line-symlink-to-dir --hide= --hyperlink? --indicator-style= "
    "--inode --ignore= --kibibytes --dereference --literal --numeric-uid-gid --hide-control-chars "
    "--show-control-chars --quote-name --quoting-style= --reverse --recursive --size --sort= --time= --time-style= "
    "--tabsize= --width= --context --zero --help --version"
)
FILES: dict[str, Reader] = {
    "ls": Reader(table(_LS), listing=True),
    "dir": Reader(table(_LS), listing=True),
    "stat": Reader(table(f"-L -f -c= -t --dereference --file-system --format= --printf= --terse --cached= {_HELP}"),
                   listing=True),
    "du": Reader(table(
        f"-0 -a -B= -b -c -D -d= -H -h -k -L -l -m -P -S -s -t= -x -X= --null --all --apparent-size --block-size= "
        f"--bytes --total --dereference-args --max-depth= --files0-from= --human-readable --inodes --count-links "
        f"--dereference --no-dereference --separate-dirs --si --summarize --threshold= --time? --time-style= "
        f"--exclude-from= --exclude= --one-file-system {_HELP}",
        reads="-X --exclude-from --files0-from",
    ), listing=True),
    "file": Reader(table(
        "-b -c -d -E -h -i -k -l -L -n -N -p -r -s -S -z -Z -0 -e= -F= -P= -m= -f= --brief --checking-printout --debug "
        "--exclude= --exclude-quiet= --extension --files-from= --separator= --mime --mime-type --mime-encoding "
        "--keep-going --list --dereference --no-dereference --magic-file= --no-buffer --no-pad --print0 "
        "--preserve-date --parameter= --raw --special-files --no-sandbox --uncompress --uncompress-noreport "
        "--help --version",
        reads="-f --files-from -m --magic-file",
        refused={"-C": WRITES_FILE, "--compile": WRITES_FILE},
    ), listing=True),
    "readlink": Reader(table(f"-f -e -m -n -q -s -v -z --canonicalize --canonicalize-existing --canonicalize-missing "
                             f"--no-newline --quiet --silent --verbose --zero {_HELP}"), listing=True),
    "realpath": Reader(table(f"-e -m -L -P -q -s -z --canonicalize-existing --canonicalize-missing --logical "
                             f"--physical --quiet --relative-to= --relative-base= --strip --no-symlinks --zero "
                             f"{_HELP}"), listing=True),
    "basename": Reader(table(f"-a -s= -z --multiple --suffix= --zero {_HELP}"), operands="none"),
    "dirname": Reader(table(f"-z --zero {_HELP}"), operands="none"),
    "pwd": Reader(table("-L -P"), operands="none"),
    "unzip": Reader(table("-l -p -t -v -Z -q -qq -z -1 -2 -s -m -h -T -x= -C -c"), listing=False),
}
#: Compressors: read-only when they write to standard output (or only list or test).
COMPRESSORS = frozenset({"gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz", "zstd", "unzstd", "lz4"})
COMPRESSOR_OPTIONS: OptionTable = table(
    "-c -d -l -t -f -q -v -n -N -k -1 -2 -3 -4 -5 -6 -7 -8 -9 --stdout --to-stdout --decompress --uncompress "
    "--list --test --force --quiet --verbose --keep --no-name --name --fast --best --help --version",
    refused={"-r": "compresses a whole folder in place", "--recursive": "compresses a whole folder in place",
             "-S": "names the files it writes", "--suffix": "names the files it writes", "-o": WRITES_FILE},
)  # fmt: skip
COMPRESSOR_TO_STDOUT = frozenset({"-c", "--stdout", "--to-stdout", "-l", "--list", "-t", "--test"})

# -- processes, memory, disks, the kernel, users: they show the system's state ------------------
SYSTEM: dict[str, Reader] = {
    "top": Reader(table("-b -c -H -i -O -S -s -1 -d= -n= -p= -u= -U= -o= -E= -e= -w? -h -v", permute=False),
                  operands="none"),
    "free": Reader(table(f"-b -k -m -g -h -l -t -v -w -s= -c= -V --bytes --kilo --mega --giga --tera --peta --kibi "
                         f"--mebi --gibi --tebi --pebi --human --si --lohi --total --committed --seconds= --count= "
                         f"--wide {_HELP}"), operands="none"),
    "df": Reader(table(f"-a -B= -h -H -i -k -l -P -t= -T -x= -v --all --block-size= --human-readable --si --inodes "
                       f"--local --no-sync --output? --portability --total --type= --print-type --exclude-type= "
                       f"{_HELP}", refused={"--sync": "flushes every file system first"}), listing=True),
    "uptime": Reader(table("-p -s -h -V --pretty --since --help --version"), operands="none"),
    "vmstat": Reader(table("-a -f -m -n -s -d -D -p= -S= -w -t -y -h -V --active --forks --slabs --one-header "
                           "--stats --disk --disk-sum --partition= --unit= --wide --timestamp --no-first --help "
                           "--version"), operands="none"),
    "iostat": Reader(table("-c -d -h -k -m -N -s -t -V -x -y -z -g= -H -j= -o= -p? --dec= --human --pretty --compact",
                           next_value={"-p": r"[A-Za-z0-9,]+|ALL"}), operands="none"),
    "mpstat": Reader(table("-A -n -T -u -V -I= -N= -P= -o= --dec="), operands="none"),
    "pidstat": Reader(table("-d -h -H -I -l -r -R -s -t -U? -u -v -w -C= -G= -p= -T= --dec= --human",
                            refused={"-e": RUNS_PROGRAM}), operands="none"),
    "sar": Reader(table("-A -B -b -d -F? -H -h -I= -i= -j= -m= -n= -P= -p -q? -r? -S -s= -e= -t -u? -V -v -W -w -x= -y "
                        "-f= --dec= --human --pretty --sadc", reads="-f",
                        refused={"-o": WRITES_FILE}), operands="none"),
    "pgrep": Reader(table("-d= -l -a -v -w -c -f -g= -G= -i -n -o -O= -P= -s= -t= -u= -U= -x -F= -L -r= -A "
                          "--delimiter= --list-name --list-full --inverse --lightweight --count --full --pgroup= "
                          "--group= --ignore-case --newest --oldest --older= --parent= --session= --terminal= "
                          "--euid= --uid= --exact --pidfile= --logpidfile --runstates= --ignore-ancestors --cgroup= "
                          "--ns= --nslist= --help --version", reads="-F --pidfile"), operands="none"),
    "pidof": Reader(table("-s -c -n -q -x -z -w -o= -S= -d="), operands="none"),
    "pstree": Reader(table("-a -A -c -C= -g -G -h -H= -l -n -N= -p -s -S -t -T -u -U -V -Z --arguments --ascii "
                           "--compact-not --color= --show-pgids --vt100 --highlight-all --highlight-pid= --long "
                           "--numeric-sort --ns-sort= --show-pids --show-parents --ns-changes --thread-names "
                           "--hide-threads --uid-changes --unicode --version --security-context"), operands="none"),
    "w": Reader(table("-h -u -s -f -o -i -V --no-header --no-current --short --from --old-style --ip-addr --help "
                      "--version"), operands="none"),
    "who": Reader(table(f"-a -b -d -H -l -m -p -q -r -s -t -T -w -u --all --boot --dead --heading --ips --login "
                        f"--lookup --process --count --runlevel --short --time --mesg --message --writable --users "
                        f"{_HELP}")),
    "whoami": Reader(table(_HELP), operands="none"),
    "id": Reader(table(f"-a -Z -g -G -n -r -u -z --context --group --groups --name --real --user --zero {_HELP}"),
                 operands="none"),
    "groups": Reader(table(_HELP), operands="none"),
    "users": Reader(table(_HELP)),
    "uname": Reader(table(f"-a -s -n -r -v -m -p -i -o --all --kernel-name --nodename --kernel-release "
                          f"--kernel-version --machine --processor --hardware-platform --operating-system {_HELP}"),
                    operands="none"),
    "arch": Reader(table(_HELP), operands="none"),
    "nproc": Reader(table(f"--all --ignore= {_HELP}"), operands="none"),
    "lscpu": Reader(table("-a -b -B -C? -c -J -e? -p? -s= -x -y -h -V --all --online --bytes --caches? --offline "
                          "--json --extended? --parse? --sysroot= --hex --physical --output-all --help --version"),
                    operands="none"),
    "lsmem": Reader(table("-J -P -a -b -n -o= -r -S= -s= -h -V --json --pairs --all --bytes --noheadings --output= "
                          "--output-all --raw --split= --sysroot= --summary? --help --version"), operands="none"),
    "lsblk": Reader(table("-A -D -E= -I= -J -M -O -P -S -T? -a -b -d -e= -f -i -l -m -n -o= -p -r -s -t -w= -x= -y -z "
                          "-h -V --noempty --discard --dedup= --include= --json --merge --output-all --pairs --scsi "
                          "--tree? --all --bytes --nodeps --exclude= --fs --ascii --list --perms --noheadings "
                          "--output= --paths --raw --inverse --topology --width= --sort= --shell --zoned --sysroot= "
                          "--help --version"), listing=True),
    "lspci": Reader(table("-m -t -v -k -x -b -D -P -n -nn -q -qq -s= -d= -i= -p= -A= -H= -F= -O= -vv -vvv -mm -PP "
                          "--version"), operands="none"),
    "lsusb": Reader(table("-v -s= -d= -D= -t -V --verbose --tree --version --help"), operands="none"),
    "iotop": Reader(table("-o -b -n= -d= -p= -u= -P -a -k -t -q -qq -qqq --only --batch --iter= --delay= --pid= "
                          "--user= --processes --accumulated --kilobytes --time --quiet --help --version"),
                    operands="none"),
    "slabtop": Reader(table("-o -d= -s= -V -h --once --delay= --sort= --version --help"), operands="none"),
    "pmap": Reader(table("-x -X -XX -c -d -q -p -A= -h -V --extended --read-rc --device --quiet --show-path --range= "
                         "--help --version", refused={"-n": WRITES_FILE, "-N": WRITES_FILE, "--create-rc": WRITES_FILE,
                                                      "--create-rc-to": WRITES_FILE}), operands="none"),
    "lslocks": Reader(table("-b -J -i -n -o= -p= -r -u -h -V --bytes --json --noinaccessible --noheadings --output= "
                            "--output-all --pid= --raw --notruncate --help --version"), operands="none"),
    "lsipc": Reader(table("-m -q -s -g -i= -b -c -e -J -n -l -o? -P -r -t -y -h -V --shmems --queues --semaphores "
                          "--global --id= --noheadings --notruncate --time-format= --bytes --creator --export --json "
                          "--newline --list --output? --numeric-perms --raw --time --shell --help --version"),
                    operands="none"),
    "lsns": Reader(table("-J -l -n -o= -p= -r -u -W -t= -T= -h -V --json --list --noheadings --output= --output-all "
                         "--task= --raw --notruncate --nowrap --type= --tree= --help --version"), operands="none"),
    "last": Reader(table("-a -d -f= -F -i -n= -R -s= -t= -p= -w -x -h -V --hostlast --dns --file= --fulltimes --ip "
                         "--limit= --nohostname --since= --until= --present= --fullnames --system --time-format= "
                         "--help --version", numeric=True, reads="-f --file"), operands="none"),
    "lastlog": Reader(table("-b= -t= -u= -h -C --before= --time= --user= --help"), operands="none"),
    "ipcs": Reader(table("-i= -m -q -s -a -t -p -c -l -u -b -h -V --id= --shmems --queues --semaphores --all --time "
                         "--pid --creator --limits --summary --human --bytes --help --version"), operands="none"),
    "findmnt": Reader(table(
        "-s -m -k -p? -w= -A -a -b -C -c -D -d= -e -F= -f -i -J -l -N= -n -O= -o= -P -R -r -S= -T= -M= -t= -U -u -v -y "
        "-x -h -V --fstab --mtab --kernel --poll? --timeout= --all --ascii --bytes --nocanonicalize --canonicalize "
        "--df --direction= --evaluate --tab-file= --first-only --invert --json --list --task= --noheadings "
        "--options= --output= --output-all --pairs --pseudo --shadowed --submounts --raw --real --source= --target= "
        "--tree --mountpoint= --types= --uniq --notruncate --nofsroot --shell --verify --verbose --vfs-all --help "
        "--version"), listing=True),
    "blkid": Reader(table("-d -o= -k -s= -t= -l -L= -U= -p -i -H= -S= -O= -u= -n= -D -h -V --no-encoding --output= "
                          "--list-filesystems --match-tag= --match-token= --list-one --label= --uuid= --probe --info "
                          "--hint= --size= --offset= --usages= --match-types= --no-part-details --help --version",
                          refused={"-c": "reads and writes a cache file it is given", "--cache-file": WRITES_FILE,
                                   "-g": "rewrites the blkid cache", "--garbage-collect": "rewrites the blkid cache"}),
                    listing=True),
    "getconf": Reader(table("-a"), operands="none"),
    "locale": Reader(table(f"-a -m -c -k -v --all-locales --charmaps --category-name --keyword-name --verbose "
                           f"{_HELP}"), operands="none"),
    "printenv": Reader(table(f"-0 --null {_HELP}"), operands="none"),
    "cal": Reader(table("-1 -3 -A= -B= -j -m -S -s -V -w -y -Y -n= -h --one --three --after= --before= --julian "
                        "--monday --sunday --week? --year --twelve --months= --span --color? --vertical --help "
                        "--version"), operands="none"),
}

# -- network diagnostics ------------------------------------------------------------------------
_PAYLOADS = "prints packet contents, passwords sent in clear included"
NETWORK: dict[str, Reader] = {
    "ss": Reader(table(
        "-h -V -n -r -a -l -o -e -m -p -T -i -s -b -E -Z -z -4 -6 -0 -t -M -S -u -d -w -x -H -O -N= -f= -A= -F= "
        "--help --version --numeric --resolve --all --listening --options --extended --memory --processes --threads "
        "--info --tipcinfo --summary --tos --cgroup --bpf --events --context --contexts --net= --ipv4 --ipv6 --packet "
        "--tcp --mptcp --sctp --udp --dccp --raw --unix --tipc --vsock --xdp --family= --no-header --oneline "
        "--inet-sockopt --query= --socket= --filter=",
        reads="-F --filter",
        refused={"-K": "closes sockets", "--kill": "closes sockets", "-D": WRITES_FILE, "--diag": WRITES_FILE},
    ), operands="none"),
    "netstat": Reader(table(
        "-r -i -g -s -M -v -W -n -N -e -p -o -c -l -a -F -C -Z -t -u -U -S -w -x -4 -6 -A= --route --interfaces "
        "--groups --statistics --masquerade --verbose --wide --numeric --numeric-hosts --numeric-ports "
        "--numeric-users --symbolic --extend --programs --timers --continuous --listening --all --fib --cache "
        "--context --tcp --udp --udplite --sctp --raw --unix --inet --inet6 --protocol= --help --version"
    ), operands="none"),
    **{name: Reader(table(
        "-4 -6 -a -A -c= -D -i= -I= -n -O -q -s= -t= -v -V -w= -W= -U -Q= -M= -e= -p= -R -h",
        refused={"-f": "floods the target", "-l": "sends a burst of packets", "-b": "pings a broadcast address"},
    ), operands="none") for name in ("ping", "ping6")},
    **{name: Reader(table(
        "-4 -6 -n -I -T -U -e -A -F -V -f= -i= -m= -p= -q= -w= -z= -s= -t= -N= --mtu --back --help --version"
    ), operands="none") for name in ("traceroute", "traceroute6")},
    "tracepath": Reader(table("-4 -6 -n -b -l= -m= -p= -V"), operands="none"),
    "mtr": Reader(table(
        "-r -w -c= -n -b -z -4 -6 -T -u -P= -i= -s= -j -C -x -e -o= -Z= -G= -m= -f= -U= -Q= -a= -I= -l -t -F= -h -v "
        "--report --report-wide --report-cycles= --no-dns --show-ips --aslookup --tcp --udp --port= --interval= "
        "--psize= --json --csv --xml --mpls --order= --timeout= --gracetime= --max-ttl= --first-ttl= --max-unknown= "
        "--address= --interface= --raw --curses --filename= --help --version",
        reads="-F --filename",
    ), operands="none"),
    "dig": Reader(table("-4 -6 -b= -c= -f= -k= -m -p= -q= -r -t= -u -x= -y= -h -v -i", reads="-f -k"),
                  operands="none"),
    "host": Reader(table("-a -A -c= -C -d -l -N= -r -R= -s -t= -T -U -v -V -w -W= -4 -6 -m="), operands="none"),
    "arp": Reader(table("-a -n -v -e -D -i= -H= -A= --all --numeric --verbose --device= --hw-type= --protocol= "
                        "--help --version", refused={"-s": "adds an entry", "--set": "adds an entry",
                                                     "-d": "deletes an entry", "--delete": "deletes an entry",
                                                     "-f": "loads entries from a file", "--file": "loads entries"}),
                  operands="none"),
    "arping": Reader(table("-b -c= -D -f -h -I= -q -s= -V -w= -i= -0", refused={
        "-A": "announces an address to the neighbours", "-U": "announces an address to the neighbours"}),
        operands="none"),
    "tcpdump": Reader(table(
        "-b -c= -D -e -F= -i= -I -K -l -L -n -N -O -p -q -Q= -r= -s= -S -t -u -U -v -y= -# -h "
        "--list-interfaces --number --immediate-mode --print --count --direction= --time-stamp-precision= --nano "
        "--micro --interface= --monitor-mode --dont-verify-checksums --no-optimize --no-promiscuous-mode "
        "--snapshot-length= --linktype= --help --version",
        reads="-F -r",
        refused={"-w": "writes a capture file", "-z": RUNS_PROGRAM, "-C": "rotates capture files",
                 "-G": "rotates capture files", "-W": "rotates capture files", "-V": "reads a list of files",
                 "-E": "reads decryption secrets", "-A": _PAYLOADS, "-x": _PAYLOADS, "-X": _PAYLOADS},
    ), operands="none"),
}
#: ``ifconfig``, ``route`` and ``iwconfig`` show with no operand (or an interface) and change with more.
SHOWS_WITHOUT_OPERANDS: dict[str, tuple[OptionTable, int]] = {
    "ifconfig": (table("-a -s -v"), 1),
    "route": (table("-n -e -ee -v -F -C -4 -6 -A= --numeric --extend --verbose --fib --cache --help --version"), 0),
    "iwconfig": (table("--help --version"), 1),
    "iptables-save": (table("-t= -c -h -V --table= --counters --help --version",
                            refused={"-M": RUNS_PROGRAM, "--modprobe": RUNS_PROGRAM, "-f": WRITES_FILE,
                                     "--file": WRITES_FILE}), 0),
    "ip6tables-save": (table("-t= -c -h -V --table= --counters --help --version",
                             refused={"-M": RUNS_PROGRAM, "--modprobe": RUNS_PROGRAM, "-f": WRITES_FILE,
                                      "--file": WRITES_FILE}), 0),
}

# -- logs --------------------------------------------------------------------------------------
_CHANGES_JOURNAL = "changes the journal"
JOURNALCTL = table(
    "--system --user -M= --machine= -m --merge -D= --directory= --file= --root= --namespace= -S= --since= -U= --until= "
    "-c= --cursor= --after-cursor= -b? --boot? -u= --unit= --user-unit= -t= --identifier= -T= --exclude-identifier= "
    "-p= --priority= --facility= -g= --grep= --case-sensitive? -k --dmesg -o= --output= --output-fields= -n? --lines? "
    "-r --reverse --show-cursor --utc -x --catalog --no-hostname --no-full -l --full -a --all -f --follow --no-tail "
    "-q --quiet --no-pager -e --pager-end -h --help --version -N --fields -F= --field= --list-boots --disk-usage "
    "--verify --header --list-catalog --dump-catalog",
    reads="--file",
    next_value={"-n": r"[+-]?\d+|all", "--lines": r"[+-]?\d+|all",
                "-b": r"[+-]?\d+|all|[0-9a-fA-F]{32}([+-]\d+)?", "--boot": r"[+-]?\d+|all|[0-9a-fA-F]{32}([+-]\d+)?"},
    refused={"--vacuum-size": "deletes journal files", "--vacuum-files": "deletes journal files",
             "--vacuum-time": "deletes journal files", "--rotate": _CHANGES_JOURNAL, "--flush": _CHANGES_JOURNAL,
             "--sync": _CHANGES_JOURNAL, "--relinquish-var": _CHANGES_JOURNAL,
             "--smart-relinquish-var": _CHANGES_JOURNAL, "--setup-keys": "creates sealing keys",
             "--update-catalog": WRITES_FILE, "--cursor-file": "writes the cursor into a file",
             "--image": "mounts a disk image"},
)
DMESG = table(
    "-F= --file= -f= --facility= -H --human -J --json -k --kernel -L? --color? -l= --level= -P --nopager -p "
    "--force-prefix -r --raw --noescape -S --syslog -s= --buffer-size= -u --userspace -w --follow -W --follow-new -x "
    "--decode -d --show-delta -e --reltime -T --ctime -t --notime --time-format= --since= --until= -h --help -V "
    "--version",
    reads="-F --file",
    refused={"-C": "clears the kernel log", "--clear": "clears the kernel log", "-c": "clears the kernel log",
             "--read-clear": "clears the kernel log", "-D": "changes the console log", "-E": "changes the console log",
             "--console-off": "changes the console log", "--console-on": "changes the console log",
             "-n": "changes the console log level", "--console-level": "changes the console log level"},
)
# fmt: on
