"""A shell line parsed into what will really run: its simple commands (argv after wrappers such as
``sudo``/``env``/``command``/``xargs``/``bash -c``), the commands inside ``$(…)`` and backticks, and
its redirections; and the destructive-command checks on that parsed argv.

Parsing uses the standard library's POSIX ``shlex`` with bash's control operators as punctuation:
it is exact about quoting, which is what matters for splitting a line into commands. Anything it
can't parse (unbalanced quotes) is ``None``: it never matches an allow rule and is checked as
destructive on its raw text."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

_CONTROL = {";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "\n"}
_REDIRECT = re.compile(r"^\d*(>|>>|>\||&>|&>>|<|<<|<<<|<>|>&|<&)$")
_SUBST = re.compile(r"\$\(([^()]*(?:\([^()]*\)[^()]*)*)\)|`([^`]*)`|<\(([^()]*)\)")
_WRAPPERS = {"sudo", "doas", "command", "builtin", "exec", "nohup", "nice", "time", "timeout", "stdbuf"}
_SHELLS = {"bash", "sh", "zsh", "dash", "ksh"}
# bash reserved words that only lead into the command after them, and loop/case headers that run nothing
_RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "esac", "{", "}", "!"}
_HEADERS = {"for", "select", "case"}


@dataclass
class Simple:
    """One simple command: its words and the redirections applied to it."""

    argv: list[str] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (operator, target)
    text: str = ""


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line.replace("\n", " ; "), posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def parse(line: str) -> list[Simple] | None:
    """The simple commands of ``line`` (substitutions included, wrappers unwrapped), or None."""
    try:
        tokens = _tokens(line)
    except ValueError:
        return None
    commands: list[Simple] = []
    current = Simple()
    words: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _CONTROL or (set(tok) <= set(";&|()") and tok):
            if words or current.redirects:
                current.argv, current.text = words, " ".join(words)
                commands.append(current)
            current, words = Simple(), []
        elif _REDIRECT.match(tok) or (tok[-1:] in "<>" and tok.rstrip("<>&|").isdigit()):
            target = tokens[i + 1] if i + 1 < len(tokens) else ""
            current.redirects.append((tok.lstrip("0123456789"), target))
            i += 1
        else:
            words.append(tok)
        i += 1
    if words or current.redirects:
        current.argv, current.text = words, " ".join(words)
        commands.append(current)
    for match in _SUBST.finditer(line):
        inner = next(g for g in match.groups() if g is not None)
        nested = parse(inner)
        if nested is None:
            return None
        commands.extend(nested)
    expanded: list[Simple] = []
    for command in commands:
        inner = _unwrap(command)
        if inner is None:
            return None
        expanded.extend(inner)
    return expanded


def _unwrap(command: Simple) -> list[Simple] | None:
    """``command`` without leading reserved words (``then``, ``do``, ``{``, ``!`` …), loop/case
    headers, assignments and wrappers; ``bash -c X`` and ``eval X`` become X's commands."""
    argv = list(command.argv)
    while argv and argv[0] in _RESERVED:
        argv = argv[1:]
    if argv and argv[0] in _HEADERS:
        argv = []  # `for f in a b` / `case x in a`: the words are data; `$(…)` in them is parsed on its own
    if not argv and not command.redirects:
        return []
    text = " ".join(argv) if argv != command.argv else command.text
    while argv:
        head = PurePosixPath(argv[0]).name
        if head == "eval":
            return parse(" ".join(argv[1:]))
        elif "=" in argv[0] and not argv[0].startswith("-") and head == argv[0]:
            argv = argv[1:]
        elif head in _WRAPPERS or head == "env":
            argv = argv[1:]
            while argv and (argv[0].startswith("-") or (head == "env" and "=" in argv[0])):
                takes = head in {"sudo", "timeout", "nice"} and argv[0] in {"-u", "-g", "-n", "-s", "-k"}
                argv = argv[2:] if takes else argv[1:]
            if head == "timeout" and argv:
                argv = argv[1:]  # the duration
        elif head == "xargs":
            argv = argv[1:]
            while argv and argv[0].startswith("-"):
                argv = argv[2:] if argv[0] in {"-I", "-n", "-P", "-d", "-L", "-s", "-E"} else argv[1:]
            return [Simple([*argv, "{xargs}"], command.redirects, text)]
        elif head in _SHELLS and len(argv) >= 3 and argv[1] in {"-c", "-lc", "-ec", "-xc"}:
            return parse(argv[2])
        else:
            break
    return [Simple(argv, command.redirects, text)]


def _flags(args: list[str]) -> set[str]:
    """Every option in ``args``: long options whole, combined short flags split (``-rf`` → r, f)."""
    found: set[str] = set()
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--"):
            found.add(arg.split("=", 1)[0])
        elif arg.startswith("-") and len(arg) > 1:
            found.update(f"-{c}" for c in arg[1:])
    return found


_GIT_OPTS_WITH_VALUE = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"}


def _git(args: list[str]) -> str | None:
    while args and args[0].startswith("-"):
        args = args[2:] if args[0] in _GIT_OPTS_WITH_VALUE else args[1:]
    if not args:
        return None
    sub, rest = args[0], args[1:]
    flags = _flags(rest)
    positional = [a for a in rest if not a.startswith("-")]
    checks = {
        "push": bool(flags & {"-f", "--force", "--force-with-lease", "--delete", "-d", "--mirror", "--prune"})
        or any(a.startswith("+") or (a.startswith(":") and len(a) > 1) for a in positional),
        "reset": bool(flags & {"--hard", "--merge", "--keep"}),
        "clean": bool(flags & {"-f", "--force"}),
        "branch": "-D" in flags or (bool(flags & {"-d", "--delete"}) and bool(flags & {"-f", "--force"})),
        "checkout": bool(flags & {"-f", "--force"}) or "--" in rest or "." in positional,
        "restore": not ({"--staged", "-S"} & flags and not {"--worktree", "-W"} & flags),
        "stash": bool(positional) and positional[0] in {"drop", "clear"},
        "reflog": bool(positional) and positional[0] in {"expire", "delete"},
        "update-ref": "-d" in flags,
    }
    return f"git {sub}" if checks.get(sub) else None


_HARMLESS_DEVICES = ("/dev/null", "/dev/std", "/dev/fd", "/dev/tty")
_ALWAYS = {"shred", "truncate", "mkfs", "wipefs", "fdisk", "sfdisk", "parted", "mkswap"}
_DELETERS = {"rm", "unlink", "rmdir", "shred", "truncate"}


def destructive_reason(command: Simple) -> str | None:
    """What makes one simple command destructive, or None."""
    for op, target in command.redirects:
        if op in {">", ">|", "&>", "<>"} and (not command.argv or command.argv[0] in {":", "true"}):
            return f"truncates {target}"
        device = target.startswith("/dev/") and not target.startswith(_HARMLESS_DEVICES)
        if op in {">", ">>", ">|", "&>", "&>>"} and device:
            return f"writes to the device {target}"
    if not command.argv:
        return None
    head, args = PurePosixPath(command.argv[0]).name, command.argv[1:]
    flags = _flags(args)
    if head == "rm" and flags & {"-r", "-R", "-f", "--recursive", "--force"}:
        return "rm -r/-f"
    if head == "rm" and args and args[-1] == "{xargs}":
        return "rm of every input line (xargs)"
    if head in _ALWAYS or head.startswith("mkfs."):
        return head
    if head == "dd" and any(a.startswith("of=") for a in args):
        return "dd of="
    if head == "mv" and args and args[-1].startswith("/dev/"):
        return f"mv onto {args[-1]}"
    if head in {"chmod", "chown", "chgrp"} and flags & {"-R", "--recursive"}:
        return f"{head} -R"
    if head == "find" and "-delete" in args:
        return "find -delete"
    if head == "find":
        for i, arg in enumerate(args):
            if arg in {"-exec", "-execdir", "-ok", "-okdir"} and i + 1 < len(args):
                sub = PurePosixPath(args[i + 1]).name
                if sub in _DELETERS or destructive_reason(Simple(args[i + 1 :])):
                    return f"find {arg} {sub}"
    if head == "git":
        return _git(args)
    return None


def is_destructive_line(line: str, patterns: list[re.Pattern[str]]) -> bool:
    """Whether ``line`` is destructive: a parsed command that is, a user regex hit, or unparsable
    text that a regex matches."""
    if any(p.search(line) for p in patterns):
        return True
    commands = parse(line)
    if commands is None:
        return False
    return any(destructive_reason(c) or any(p.search(c.text) for p in patterns) for c in commands)
