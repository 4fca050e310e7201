"""The documentation runs: every fenced code block of README.md and docs/*.md is executed.

The conventions (docs/development.md, "The docs test", says the same for writers):

- Every fence names its language: ``python``, ``console``, ``bash``, ``yaml`` or ``text``.
  Any other language, or none, fails the test.
- ``python``: the blocks of one file run in order in one fresh namespace, with that file's
  scratch directory as the working directory.
- ``bash``: every line that is not blank and not a ``#`` comment is a command; a line ending
  in ``\\`` continues on the next one.
- ``console``: lines starting with ``$ `` are commands (``\\`` continues them); the other lines
  are what they print: every such line except ``...`` must appear, in this order, among the
  lines the command prints (stdout, then stderr; trailing spaces ignored).
- Commands are ``archsim ...`` commands only. Each runs as ``python -m archsim.cli`` in the
  file's scratch directory and must exit 0. A trailing comment holds markers, separated by
  ``;``: a part ``exit N`` (e.g. ``# exit 1: five figures fail``) expects exit code N instead,
  and a part starting with ``slow`` moves the command to the file's slow test, which runs
  only the slow commands: they may use what the file's other slow commands and its ``file=``
  YAML blocks made, nothing else.
- ``yaml``: parsed (duplicate keys are errors). A first line ``# archsim: KIND [BASE]
  [file=NAME]`` says what it is and checks it with archsim's loaders: ``design`` (a whole
  design file), ``cascade``, ``sweep`` (every point's design is resolved too), or
  ``design-section BASE`` (top-level sections that replace those of built-in design BASE).
  ``file=NAME`` also writes the block to NAME in the scratch directory, for later commands.
- ``text``: output, grammars and diagrams; never run.

The scratch directory (one per file) holds symlinks to the checkout's top-level entries, so a
command can name ``tests/reference/...`` or ``designs/...`` as from the repository root, while
everything the examples write lands in the scratch directory.

Exempt, and only these: the README's two Quickstart commands (``pip install ...``). They
install packages, which a test must not do; ``.ci/run`` runs the second one, and
``test_readme_quickstart`` checks both are in the README byte for byte.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import archsim
import dataflow
from testpaths import REPO_ROOT

QUICKSTART = (
    "pip install . && archsim map --design npu --model llama2-7b --phase decode --batch 32 "
    "--seq 1024",
    'pip install torch==2.13.0 && pip install -e ".[test]" && pytest -n 2',
)
LANGUAGES = ("python", "console", "bash", "yaml", "text")
YAML_KINDS = ("design", "cascade", "sweep", "design-section")
README_MAX_LINES = 80
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    path: Path
    line: int                  # of the opening fence, 1-based
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


@dataclass
class Command:
    block: Block
    argv: list[str]
    text: str
    exit_code: int = 0
    slow: bool = False
    output: list[str] = field(default_factory=list)


def fenced_blocks(path: Path) -> list[Block]:
    blocks, lang, start, body = [], None, 0, []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.lstrip().startswith("```"):
            if lang is not None:
                body.append(line)
            continue
        assert not line.startswith(" "), f"{path.name}:{i}: indented fence"
        if lang is None:
            lang, start, body = line[3:].strip(), i, []
        else:
            assert line.strip() == "```", f"{path.name}:{i}: closing fence with text"
            blocks.append(Block(path, start, lang, "\n".join(body) + "\n"))
            lang = None
    assert lang is None, f"{path.name}:{start}: fence never closed"
    return blocks


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): the comment starts at the first ``#`` outside quotes that begins a
    word."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def logical_lines(lines: list[str]) -> list[str]:
    """The lines with ``\\`` continuations joined."""
    out: list[str] = []
    it = iter(lines)
    for line in it:
        while line.rstrip().endswith("\\"):
            line = line.rstrip()[:-1] + " " + next(it).strip()
        out.append(line)
    return out


def commands(block: Block) -> list[Command]:
    raw = block.text.splitlines()
    cmds: list[Command] = []
    if block.lang == "console":
        i = 0
        while i < len(raw):
            line = raw[i]
            i += 1
            if not line.startswith("$ "):
                assert cmds, f"{block.where}: output before any '$ ' command: {line!r}"
                if line.strip() and line.strip() != "...":
                    cmds[-1].output.append(line.rstrip())
                continue
            line = line[2:]
            while line.rstrip().endswith("\\"):
                line = line.rstrip()[:-1] + " " + raw[i].strip()
                i += 1
            cmds.append(parse_command(block, line))
    else:
        for line in logical_lines(raw):
            if line.strip() and not line.lstrip().startswith("#"):
                cmds.append(parse_command(block, line))
    return cmds


def parse_command(block: Block, line: str) -> Command:
    text, comment = split_comment(line.strip())
    cmd = Command(block, shlex.split(text), text)
    for part in (p.strip() for p in comment.split(";")):
        m = re.match(r"exit (\d+)\b", part)
        if m:
            cmd.exit_code = int(m.group(1))
        elif part.startswith("slow"):
            cmd.slow = True
    return cmd


def is_exempt(cmd: Command) -> bool:
    return cmd.block.path.name == "README.md" and cmd.block.path.parent == REPO_ROOT and \
        cmd.text in QUICKSTART


def yaml_marker(block: Block) -> tuple[str | None, str | None, str | None]:
    """(kind, base, file) from a first line ``# archsim: KIND [BASE] [file=NAME]``."""
    first = block.text.splitlines()[0] if block.text.strip() else ""
    m = re.match(r"#\s*archsim:\s*(.*)$", first)
    if not m:
        return None, None, None
    words = m.group(1).split()
    files = [w[5:] for w in words if w.startswith("file=")]
    rest = [w for w in words if not w.startswith("file=")]
    kind = rest[0] if rest else None
    base = rest[1] if len(rest) > 1 else None
    assert kind is None or kind in YAML_KINDS, f"{block.where}: unknown yaml kind {kind!r}"
    assert (base is not None) == (kind == "design-section"), \
        f"{block.where}: 'design-section' takes a base design, the other kinds none"
    assert len(files) <= 1 and all("/" not in f for f in files), \
        f"{block.where}: file= takes one plain file name"
    return kind, base, files[0] if files else None


def scratch_dir(tmp_path: Path) -> Path:
    for entry in REPO_ROOT.iterdir():
        if not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


def write_yaml_file(block: Block, cwd: Path) -> None:
    _, _, name = yaml_marker(block)
    if name:
        (cwd / name).write_text(block.text)


def check_yaml(block: Block, cwd: Path, n: int) -> None:
    data = dataflow.load_yaml_strict(block.text, filename=block.where)
    kind, base, name = yaml_marker(block)
    path = cwd / (name or f"_block{n}.yaml")
    if kind == "design-section":
        assert isinstance(data, dict) and data, f"{block.where}: expected design sections"
        merged = {**archsim.load_design(base).resolved, **data}
        path.write_text(yaml.safe_dump(merged, sort_keys=False))
    else:
        path.write_text(block.text)
    if kind in ("design", "design-section"):
        archsim.load_design(path)
    elif kind == "cascade":
        dataflow.load_cascade(str(path))
    elif kind == "sweep":
        try:
            from archsim.experiments import sweep
        except ImportError:
            from archsim import sweep
        spec = sweep.load_spec(path)
        for point in spec.points():
            sweep.point_setup(spec, point)


def run_command(cmd: Command, cwd: Path, run_archsim) -> None:
    assert cmd.argv and cmd.argv[0] == "archsim", \
        f"{cmd.block.where}: only archsim commands run in the docs: {cmd.text!r}"
    proc = run_archsim(*cmd.argv[1:], cwd=cwd, timeout=600 if cmd.slow else 120)
    assert proc.returncode == cmd.exit_code, (
        f"{cmd.block.where}: `{cmd.text}` exited {proc.returncode}, the docs say "
        f"{cmd.exit_code}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    assert "Traceback" not in proc.stderr, f"{cmd.block.where}: `{cmd.text}`\n{proc.stderr}"
    printed = iter(line.rstrip() for line in (proc.stdout + "\n" + proc.stderr).splitlines())
    for expected in cmd.output:
        assert any(line == expected for line in printed), (
            f"{cmd.block.where}: `{cmd.text}` did not print (in the documented order):\n"
            f"{expected}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")


def run_doc(path: Path, tmp_path: Path, run_archsim, monkeypatch, slow: bool) -> int:
    """Run ``path``'s blocks (the slow commands only, if ``slow``); return how many ran."""
    cwd = scratch_dir(tmp_path)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for n, block in enumerate(fenced_blocks(path)):
        assert block.lang in LANGUAGES, \
            f"{block.where}: fence language {block.lang!r}; expected one of {LANGUAGES}"
        if block.lang == "yaml":
            write_yaml_file(block, cwd)
            if not slow:
                check_yaml(block, cwd, n)
                ran += 1
        elif block.lang == "python" and not slow:
            exec(compile(block.text, block.where, "exec"), namespace)
            ran += 1
        elif block.lang in ("console", "bash"):
            cmds = [c for c in commands(block) if not is_exempt(c) and c.slow == slow]
            for cmd in cmds:
                run_command(cmd, cwd, run_archsim)
            ran += bool(cmds)
    return ran


def _has_slow(path: Path) -> bool:
    return any(c.slow for b in fenced_blocks(path) if b.lang in ("console", "bash")
               for c in commands(b))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_blocks_run(path, tmp_path, run_archsim, monkeypatch, record_property):
    record_property("blocks", run_doc(path, tmp_path, run_archsim, monkeypatch, slow=False))


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in DOCS if _has_slow(p)], ids=lambda p: p.name)
def test_doc_slow_commands_run(path, tmp_path, run_archsim, monkeypatch, record_property):
    record_property("blocks", run_doc(path, tmp_path, run_archsim, monkeypatch, slow=True))


def test_every_docs_file_has_a_block_that_runs():
    for path in DOCS:
        assert any(b.lang != "text" for b in fenced_blocks(path)), f"{path.name}: no example"


def test_readme_quickstart():
    """The README is short, and its Quickstart has exactly the two commands, byte for byte,
    each alone in a block; ``.ci/run`` runs the second one."""
    text = (REPO_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    exempt = [c.text for b in fenced_blocks(REPO_ROOT / "README.md") for c in
              (commands(b) if b.lang in ("console", "bash") else []) if c.text.startswith("pip")]
    assert exempt == list(QUICKSTART)
    assert QUICKSTART[1] in (REPO_ROOT / ".ci" / "run").read_text().splitlines()


# --- links ------------------------------------------------------------------------------------

LINKED = [*DOCS, REPO_ROOT / "notebooks" / "README.md", REPO_ROOT / "benchmarks" / "README.md"]


def _prose(path: Path) -> str:
    """The file without fenced blocks and inline code (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _heading_anchors(path: Path) -> set[str]:
    # headings may hold inline code: strip only the backticks, keep the text
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    seen: dict[str, int] = {}
    out = set()
    for line in text.splitlines():
        m = re.match(r"#{1,6} (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").strip().lower())
            slug = slug.replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("path", LINKED, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(path)):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: link to missing {target}"
        if anchor:
            assert dest.suffix == ".md", f"{path.name}: anchor into a non-markdown file {target}"
            assert anchor in _heading_anchors(dest), f"{path.name}: no heading for {target}"
