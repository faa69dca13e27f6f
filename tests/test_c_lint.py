"""A crude text lint of csrc/: the rules that keep the engine thread away
from Python, checked on every test run (after msgspec's test_cpylint)."""

from __future__ import annotations

import re
from pathlib import Path

CSRC = Path(__file__).resolve().parent.parent / "csrc"
# the Python binding (csrc/binding.h says which file does what); every
# other file is the engine's and never sees a Python object
BINDING_FILES = ("module.c", "engineobj.c", "taskobj.c", "convert.c", "binding.h")
BINDING_SOURCES = sorted(CSRC / name for name in BINDING_FILES if name.endswith(".c") and (CSRC / name).exists())
ENGINE_FILES = sorted(p for p in CSRC.glob("*.c") if p.name not in BINDING_FILES)


def test_only_the_binding_files_include_python() -> None:
    assert ENGINE_FILES, "no C sources found"
    for path in [*ENGINE_FILES, *(p for p in CSRC.glob("*.h") if p.name not in BINDING_FILES)]:
        text = path.read_text()
        assert not re.search(r"#\s*include\s*[<\"]Python.h", text), f"{path.name} includes Python.h"
        calls = re.findall(r"\b_?Py[A-Z_]\w*\s*\(", text)
        assert not calls, f"{path.name} calls the C API: {calls[:5]}"


def test_allow_threads_blocks_are_paired() -> None:
    total = 0
    for path in BINDING_SOURCES:
        text = path.read_text()
        begins = text.count("Py_BEGIN_ALLOW_THREADS")
        assert begins == text.count("Py_END_ALLOW_THREADS"), path.name
        total += begins
    assert total > 0


def test_no_raw_allocator_mixing_in_the_binding() -> None:
    # memory the engine thread frees must come from malloc, never PyMem_*
    for path in BINDING_SOURCES:
        text = path.read_text()
        assert "PyMem_Malloc" not in text and "PyMem_Free" not in text, path.name


def test_every_state_change_goes_through_eng_set_state() -> None:
    # engine.h: t->state is written by eng_set_state_locked() only (and
    # set once by task_new before the task is shared)
    writes = []
    for path in sorted(CSRC.glob("*.c")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(->|\.)state\s*=(?!=)", line):
                writes.append((path.name, line.strip(), n))
    assert sorted(w[:2] for w in writes) == [("engine.c", "t->state = st;"), ("task.c", "t->state = TS_QUEUED;")], writes
    # and a finished state only through eng_finish (engine.h)
    for path in sorted(CSRC.glob("*.c")):
        finishing = re.findall(r"eng_set_state(?:_locked)?\([^;]*TS_(?:DONE|FAILED|CANCELLED)", path.read_text())
        assert not finishing, (path.name, finishing)


def test_task_opts_copy_knows_every_pointer_field() -> None:
    # engine.h: task_opts_copy/task_opts_clear handle the owned strings by
    # one list, TASK_OPTS_STRINGS, and headers and cookies by name; a
    # pointer field outside those would be shared by a copy and freed twice
    header = (CSRC / "engine.h").read_text()
    body = re.search(r"struct task_opts \{(.*?)\n\};", header, re.S)
    assert body
    code = re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S)
    pointers = set(re.findall(r"\*+\s*(\w+)\s*;", code))
    listed = re.search(r"#define TASK_OPTS_STRINGS\(X\)(.*?)\n\n", header, re.S)
    assert listed
    strings = set(re.findall(r"X\((\w+),", listed.group(1)))
    assert pointers == strings | {"headers", "cookies"}, pointers ^ (strings | {"headers", "cookies"})


MAX_FILE_LINES = 900
MAX_FUNCTION_LINES = 80


def test_files_and_functions_stay_small() -> None:
    # issue 20: a newcomer reads a file and a function at a time; a
    # function runs from its signature (the column-0 lines before a "{"
    # alone on its line) to the next "}" at column 0
    long = []
    for path in sorted(CSRC.glob("*.[ch]")):
        lines = path.read_text().splitlines()
        assert len(lines) <= MAX_FILE_LINES, f"{path.name}: {len(lines)} lines"
        start = None
        for n, line in enumerate(lines):
            if line == "{":
                start = n - 1
                while start > 0 and lines[start].startswith(" "):
                    start -= 1
            elif start is not None and line.startswith("}"):
                if n - start + 1 > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{start + 1} {lines[start][:60]} ({n - start + 1} lines)")
                start = None
    assert not long, long


def test_no_select_and_no_signals_on_easy_handles() -> None:
    for path in ENGINE_FILES:
        text = path.read_text()
        assert "select(" not in text and "curl_multi_wait(" not in text, path.name
    assert "CURLOPT_NOSIGNAL, 1L" in (CSRC / "transfer.c").read_text()
