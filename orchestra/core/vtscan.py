"""Find the terminal queries in a program's output, and strip them from what clients see.

Theory of operation. A program asks its terminal questions in band: "where is the
cursor?" (`CSI 6n`), "what are you?" (`CSI c`), "what is your background colour?"
(`OSC 11;? ST`). The daemon's terminal model is the one answerer. A client's real
terminal must never see a query, or it answers too and the program reads the second
answer as keystrokes. So the output forwarded to clients goes through `QueryFilter`.

The scan leans on one property of the VT parser (ECMA-48 / the DEC state machine):
ESC starts a new sequence from any state, including the middle of an OSC or DCS
string. So which sequence is open at the end of a chunk is decided by the last ESC
alone, and one compiled regular expression finds every complete query wherever it
is, at C speed, without tokenizing the ordinary sequences around it. Only string
sequences (OSC, DCS, APC, PM, SOS) are followed in Python: their payload decides
whether they ask something, and a long one spans many reads.

Partial sequences: the tail of a chunk that may still become a query is held back
and completed by the next chunk. A string sequence known not to be a query is
forwarded as it arrives, so that clients are in the middle of it; `pending()` keeps
those forwarded bytes, for a client that attaches mid-sequence.

The stream is UTF-8: the 8-bit C1 forms (0x9b CSI, 0x9d OSC, 0x9c ST) are UTF-8
continuation bytes here, not controls (libghostty-vt treats them the same way).

Known limit: a C0 control byte inside a CSI query (`ESC [ 6 CR n`, which terminals
execute and then answer) is not recognised; no program is known to send one.

The rest of the terminal model reads the stream through this one scanner too (its
`extra`, `ctl` and `strings` reports), with the same grammar: `parse_csi` splits a
reported CSI sequence into its parts, `osc_body` takes a reported OSC's body.

Stdlib only, no I/O.
"""

from __future__ import annotations

import re
from typing import Final

ESC: Final = 0x1B
_BEL: Final = 0x07
_CAN: Final = 0x18
_SUB: Final = 0x1A
_ST: Final = b"\x1b\\"

# Complete CSI and ESC sequences that ask the terminal something. Every alternative
# ends at the sequence's final byte, so none matches a prefix of a longer sequence.
_CSI_QUERY_ALTS: Final = (
    rb"\[[>=]?0?c"  # DA1 `CSI c`, DA2 `CSI > c`, DA3 `CSI = c`
    rb"|\[[56]n"  # DSR: status `CSI 5n`, cursor position `CSI 6n`
    rb"|\[\?[0-9;]*n"  # DEC DSR: `CSI ?6n` (DECXCPR), `CSI ?996n` (colour scheme), ...
    rb"|\[\??[0-9]*\$p"  # DECRQM, DEC private and ANSI modes
    rb"|\[>0?q"  # XTVERSION
    rb"|\[\?u"  # kitty keyboard flags
    rb"|\[(?:1[1345689]|2[01])(?:;[0-9]*)?t"  # XTWINOPS reports (11, 13-16, 18-21)
    rb"|\[\?[0-9;]*m"  # XTQMODKEYS `CSI ?4m`
    rb"|\[>[0-9;]*\?[0-9;]*m"  # Gemini CLI's modifyOtherKeys query `CSI >4;?m`
    rb"|\[\?[0-9;]*S"  # XTSMGRAPHICS
    rb"|\[[0-9]*\$[wu]"  # DECRQPSR, DECRQTSR
    rb"|\[&u"  # DECRQUPSS
    rb"|\[[0-9;]*\*y"  # DECRQCRA (checksum of a rectangle)
    rb"|\[[0-9;]*#\|"  # XTREPORTSGR
    rb"|\[[01]?x"  # DECREQTPARM
    rb'|\["v'  # DECRQDE
    rb"|Z"  # DECID (an old DA1)
)

_QUERY_RE: Final = re.compile(rb"\x1b(?:" + _CSI_QUERY_ALTS + rb")")
# XTWINOPS that act on the terminal's window (de/iconify, move, resize, raise, lower,
# refresh, maximize, fullscreen, resize to N lines): an agent must never move or resize
# the person's window, so a stripping scanner drops them (tmux ignores them too). Not
# the reports (queries, above) nor the title stack (22, 23).
_WINDOW_OP: Final = re.compile(rb"\x1b\[(?:[1-9]|10|2[4-9]|[3-9][0-9]|[1-9][0-9]{2,})(?:;[0-9]*)*t")
_CSI: Final = re.compile(rb"\x1b\[[\x30-\x3f]*+[\x20-\x2f]*+[\x40-\x7e]")
# The same grammar, in parts: private marker, parameters, intermediates, final byte.
_CSI_PARTS: Final = re.compile(rb"\x1b\[([<=>?]?)([\x30-\x3f]*)([\x20-\x2f]*)([\x40-\x7e])")

# What the scan stops at: string introducers, DECID, and CSI sequences that may be
# queries, judged by their first parameter byte and final (or intermediate) byte.
# Coarse on purpose: ordinary CSI (SGR, cursor moves, DECSET) fail within a few
# bytes, at C speed; the few candidates are checked against _QUERY_RE in Python.
_SCAN: Final = (
    rb"\x1b(?:\[(?:[0-9;]*+[cntx$*#]|\?[0-9;]*+[nmSu$]|[>=][0-9;?]*+[cqm]|[&\"])|[Z\]P_X^])"
)

# OSC numbers that have a query form; any other OSC is forwarded as soon as its
# number is known.
_QUERY_OSC: Final = frozenset(
    [b"4", b"5", b"21", b"22", b"52", b"99", b"1337"] + [str(n).encode() for n in range(10, 20)]
)
_QUERY_OSC_PREFIXES: Final = frozenset(q[:i] for q in _QUERY_OSC for i in range(len(q) + 1))

# An unfinished ESC or CSI sequence at the very end of a buffer (or of a slice).
_INCOMPLETE: Final = re.compile(rb"\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|[\x20-\x2f]*)\Z")
_PARTIAL: Final = re.compile(rb"\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|[\x20-\x2f]*)")
_STRING_INTRO: Final = frozenset(b"]P_X^")
_OSC_END: Final = re.compile(rb"[\x07\x18\x1a\x1b]")
_STR_END: Final = re.compile(rb"[\x18\x1a\x1b]")
_DCS_HEAD: Final = re.compile(rb"([\x30-\x3f]*)([\x20-\x2f]*)([\x40-\x7e])?")

HOLD_MAX: Final = 8192
"""A sequence still undecided after this many bytes is not a query: forward it."""
PENDING_MAX: Final = 65536
"""`pending()` keeps at most this much of a long forwarded string (its start)."""

# String decisions.
_HOLD: Final = 0
_PASS: Final = 1
_QUERY: Final = 2


def _osc_split(rest: bytes, sep: bytes = b";") -> list[bytes]:
    return rest.split(sep) if rest else []


def _osc_decide(content: bytes, complete: bool) -> tuple[int, bytes]:
    """Whether an OSC body (between `ESC ]` and the terminator) is a query.

    Returns (_QUERY, b"") , (_PASS, b""), (_HOLD, b"") or, for a body that mixes
    queries and settings, (_QUERY, the settings alone as a new OSC body list joined
    by NUL) so the caller can forward the settings.
    """
    num, sep, rest = content.partition(b";")
    if not complete:
        if not sep:
            return (_HOLD, b"") if num in _QUERY_OSC_PREFIXES else (_PASS, b"")
        return (_HOLD, b"") if num in _QUERY_OSC else (_PASS, b"")
    if not sep or num not in _QUERY_OSC:
        return _PASS, b""
    if num in (b"4", b"5"):
        items = _osc_split(rest)
        pairs = list(zip(items[0::2], items[1::2], strict=False))
        keep = [p for p in pairs if p[1] != b"?"]
        if len(keep) == len(pairs) or len(items) % 2:
            return _PASS, b""
        return _QUERY, b"\0".join(num + b";" + i + b";" + v for i, v in keep)
    if num == b"21":
        items = _osc_split(rest)
        kept = [i for i in items if not i.endswith(b"=?")]
        if len(kept) == len(items):
            return _PASS, b""
        return _QUERY, (num + b";" + b";".join(kept)) if kept else b""
    if num == b"22":
        return (_QUERY, b"") if rest.startswith(b"?") else (_PASS, b"")
    if num == b"52":
        parts = rest.split(b";", 1)
        return (_QUERY, b"") if len(parts) == 2 and parts[1] == b"?" else (_PASS, b"")
    if num == b"99":
        meta = rest.split(b";", 1)[0]
        return (_QUERY, b"") if b"p=?" in meta.split(b":") else (_PASS, b"")
    if num == b"1337":
        if rest in (b"ReportCellSize", b"Capabilities") or rest.startswith(b"ReportVariable="):
            return _QUERY, b""
        return _PASS, b""
    # 10..19: successive dynamic colours, each `?` asks for one.
    values = _osc_split(rest)
    first = int(num)
    keep_pairs = [(first + k, v) for k, v in enumerate(values) if v != b"?"]
    if len(keep_pairs) == len(values):
        return _PASS, b""
    return _QUERY, b"\0".join(str(n).encode() + b";" + v for n, v in keep_pairs)


def _apc_decide(content: bytes, complete: bool) -> tuple[int, bytes]:
    """Whether an APC body is a kitty graphics query (`a=q`); other graphics commands
    pass with `q=2` added, so that a client's terminal never answers them either."""
    if not content.startswith(b"G"):
        return (_HOLD, b"") if not content and not complete else (_PASS, b"")
    keys, sep, _ = content[1:].partition(b";")
    if not sep and not complete:
        return _HOLD, b""
    fields = keys.split(b",")
    if b"a=q" in fields:
        return _QUERY, b""
    if any(f.startswith(b"q=") for f in fields):
        return _PASS, b""
    return _PASS, b"G" + (keys + b",q=2" if keys else b"q=2")


def _dcs_decide(content: bytes, complete: bool) -> tuple[int, bytes]:
    """Whether a DCS body is XTGETTCAP (`+q`), XTGETXRES (`+Q`) or DECRQSS (`$q`)."""
    m = _DCS_HEAD.match(content)
    assert m is not None  # the pattern matches the empty string
    if m.group(3) is None:
        # Header unfinished: decide once the final byte arrives.
        return (_PASS, b"") if complete or m.end() < len(content) else (_HOLD, b"")
    if m.group(1) or (m.group(2), m.group(3)) not in ((b"+", b"q"), (b"+", b"Q"), (b"$", b"q")):
        return _PASS, b""
    return (_QUERY, b"") if complete else (_HOLD, b"")


def _aborted_start(buf: bytes, lo: int, s: int) -> int:
    """Where the run of unfinished ESC/CSI sequences ending at `s` starts (`s` if none)."""
    while True:
        last = buf.rfind(b"\x1b", lo, s)
        if last < 0 or not _PARTIAL.fullmatch(buf, last, s):
            return s
        s = last


class VTScanner:
    """Incremental scanner: finds queries (and, optionally, other sequences) in a stream.

    `extra` is a regular-expression alternative (bytes) matching further complete
    ESC sequences to report, for instance `\\x1b7|\\x1b\\[s` (each alternative must
    start with ESC, and none may match a query); `ctl` lists C0 bytes to report when
    they stand alone in the stream (not inside a string sequence), such as BEL.
    Each `feed` refills `events` with `(end, kind, seq)` in stream order:
    `end` is the offset in the data just fed at which the sequence completes, `kind`
    is "q" (query), "x" (matched `extra`) or "s" (any other complete string sequence,
    reported when `strings` is true, or, when it is a tuple of prefixes, each OSC whose
    body starts with one of them; long bodies are cut at PENDING_MAX), and
    `seq` the sequence's bytes (it may have started in an earlier chunk).
    With `strip`, `feed` also returns the data minus the queries.
    """

    __slots__ = (
        "_client_in_str",
        "_ctl",
        "_extra",
        "_fwd",
        "_held",
        "_pat",
        "_pat_ctl",
        "_special",
        "_str",
        "_strings",
        "_strip",
        "events",
        "plain",
        "special",
    )

    def __init__(
        self,
        *,
        strip: bool = False,
        extra: bytes = b"",
        ctl: bytes = b"",
        strings: bool | tuple[bytes, ...] = False,
    ) -> None:
        scan = _SCAN + (b"|" + extra if extra else b"")
        self._pat = re.compile(scan)
        # For a chunk holding ENQ or one of `ctl` (slower: no common ESC prefix).
        self._ctl = b"\x05" + ctl
        self._pat_ctl = re.compile(scan + b"|[" + re.escape(self._ctl) + b"]")
        # The bytes that make a chunk need scanning (a keystroke's echo usually has none).
        self.special = b"\x1b" + self._ctl
        self._special = re.compile(b"[" + re.escape(self.special) + b"]").search
        self._extra = re.compile(extra) if extra else None
        self._strip = strip
        # True: report every string; a tuple: only OSC whose body starts with one of them.
        self._strings = strings
        # Invariants:
        # - _held: the unresolved tail of the stream (it starts with ESC), neither
        #   forwarded nor scanned to a decision yet; empty when nothing is unresolved.
        # - _str: the introducer byte (']', 'P', ...) of a string sequence that is not
        #   a query and is being forwarded as it arrives; 0 when none is open.
        # - _client_in_str: the clients' parsers are inside a forwarded string whose
        #   terminator has not been forwarded yet (true whenever _str is set, and
        #   also after the string ended at an ESC that is still held).
        # - _fwd: the forwarded bytes of that string (its first PENDING_MAX bytes).
        self._held = b""
        self._str = 0
        self._client_in_str = False
        self._fwd = bytearray()
        self.events: list[tuple[int, str, bytes]] = []
        # The last chunk held no sequence and no reported control byte, and none was open.
        self.plain = True

    def pending(self) -> bytes:
        """The unfinished sequence already forwarded: what a new client needs after a
        snapshot so that its parser is where the others are. Bytes still held back
        (a possible query) are not included: `feed` returns them later, to everyone."""
        return bytes(self._fwd) if self._client_in_str else b""

    def held(self) -> bytes:
        """The unresolved tail held back from the last `feed` (for tests)."""
        return self._held

    @property
    def at_rest(self) -> bool:
        """No sequence is open: a chunk with none of the `special` bytes passes unchanged
        and reports nothing."""
        return not (self._str or self._held)

    def _keep(self, chunk: bytes) -> None:
        room = PENDING_MAX - len(self._fwd)
        if room > 0:
            self._fwd += chunk[:room]

    def feed(self, data: bytes) -> bytes:
        """Scan `data`; with `strip`, return it minus every query (else b"")."""
        if not (self._str or self._held) and self._special(data) is None:  # at rest
            self.events = []  # no sequence and no reported control byte: nothing to do
            self.plain = True
            return data if self._strip else b""
        self.plain = False
        out: list[bytes] = []
        ev = self.events = []
        strip = self._strip
        if self._str:
            # Inside a forwarded string: find where it ends.
            m = (_OSC_END if self._str == 0x5D else _STR_END).search(data)
            if m is None:
                self._keep(data)
                return data if strip else b""
            j = m.start()
            term = data[j]
            if term != ESC:
                j += 1
            self._keep(data[:j])
            if strip:
                out.append(data[:j])
            if self._wants(self._fwd):
                ev.append((j + 1 if term == ESC else j, "s", bytes(self._fwd)))
            self._str = 0
            if term != ESC:
                self._client_in_str = False
                self._fwd = bytearray()
            buf, i, base = data, j, 0
        elif self._held:
            base = len(self._held)
            buf, i = self._held + data, 0
            self._held = b""
        else:
            buf, i, base = data, 0, 0

        search = self._pat.search
        for c in self._ctl:
            if c in buf:
                search = self._pat_ctl.search
                break
        extra = self._extra
        n = len(buf)
        pos = i  # where the next search starts; i is where unforwarded bytes start
        while True:
            m = search(buf, pos)
            if m is None:
                break
            s = m.start()
            c = buf[s]
            second = buf[s + 1] if s + 1 < n else -1
            if c == ESC and second == 0x5B:  # CSI
                mm = _CSI.match(buf, s)
                if mm is None:  # unfinished (held at the end) or malformed
                    pos = s + 2
                    continue
                e = mm.end()
                seq = buf[s:e]
                if _QUERY_RE.fullmatch(seq):
                    self._emit_before(out, buf, i, s, dropping=True)
                    ev.append((e - base, "q", seq))
                    i = e
                elif extra is not None and extra.fullmatch(seq):
                    ev.append((e - base, "x", seq))
                elif strip and _WINDOW_OP.fullmatch(seq):
                    self._emit_before(out, buf, i, s, dropping=True)
                    i = e
                pos = e
                continue
            if c < 0x20 and c != ESC:
                # A C0 control inside an unfinished ESC or CSI sequence is executed there
                # but is part of it: removing it could join the sequence into a query.
                last = buf.rfind(b"\x1b", i, s)
                if last >= 0 and _PARTIAL.fullmatch(buf, last, s):
                    pos = s + 1
                    continue
            if c == 0x05 or (c == ESC and second == 0x5A):  # ENQ, DECID
                e = s + (1 if c == 0x05 else 2)
                self._emit_before(out, buf, i, s, dropping=True)
                ev.append((e - base, "q", buf[s:e]))
                i = pos = e
                continue
            if c != ESC or second not in _STRING_INTRO:  # matched `extra`
                ev.append((m.end() - base, "x", m.group()))
                pos = m.end()
                continue
            # A string sequence starts at s.
            intro = buf[s + 1]
            endm = (_OSC_END if intro == 0x5D else _STR_END).search(buf, s + 2)
            j = endm.start() if endm is not None else n
            body = buf[s + 2 : j]
            term = buf[j] if endm is not None else -1
            # An ESC as the very last byte may begin the ST: wait for the next byte.
            complete = endm is not None and not (term == ESC and j + 1 == n)
            if intro == 0x5D:
                if term in (_CAN, _SUB):
                    decision, repl = _PASS, b""  # aborted: no terminal acts on it
                else:
                    decision, repl = _osc_decide(body, complete)
            elif intro == 0x50:
                decision, repl = _dcs_decide(body, complete)
            elif intro == 0x5F:
                decision, repl = _apc_decide(body, complete)
            else:
                decision, repl = _PASS, b""
            if decision == _QUERY and not complete:
                decision = _HOLD
            if decision == _HOLD:
                if n - s <= HOLD_MAX:
                    s = _aborted_start(buf, i, s)  # held with it, as it may yet be dropped
                    self._emit_before(out, buf, i, s, dropping=False)
                    self._held = buf[s:]
                    return b"".join(out) if strip else b""
                decision, repl = _PASS, b""
            if decision == _QUERY:
                seq_end = j + 1 if term == _BEL else j
                if term == ESC and buf[j + 1] == 0x5C:
                    seq_end = j + 2
                self._emit_before(out, buf, i, s, dropping=True)
                ev.append((seq_end - base, "q", buf[s:seq_end]))
                if repl and strip:  # the settings of a mixed OSC go on
                    t = b"\x07" if term == _BEL else _ST
                    out.extend(b"\x1b]" + r + t for r in repl.split(b"\0"))
                i = pos = seq_end
                continue
            # Not a query: forward it.
            self._emit_before(out, buf, i, s, dropping=False)
            head = buf[s:j]
            if repl:  # a kitty graphics command, made quiet
                keys = body[1:].partition(b";")[0]
                head = b"\x1b_" + repl + buf[s + 3 + len(keys) : j]
            if endm is None:
                # The string goes on in the next chunk.
                if strip:
                    out.append(head)
                self._str = intro
                self._client_in_str = True
                self._fwd = bytearray()
                self._keep(head)
                return b"".join(out) if strip else b""
            seq_end = j + 1 if term != ESC else j
            if strip:
                out.append(head if seq_end == j else head + buf[j:seq_end])
            if self._strings and self._wants(buf[s : s + 16]):
                ev_end = seq_end + 1 if term == ESC else seq_end  # ESC ends it in the parser
                ev.append((ev_end - base, "s", buf[s:seq_end][:PENDING_MAX]))
            if term == ESC:
                # Clients are inside the string until that ESC is forwarded.
                self._client_in_str = True
                self._fwd = bytearray()
                self._keep(head)
            else:
                self._close_client_str()
            i = pos = seq_end

        # No more queries or strings: hold an unfinished ESC/CSI sequence at the end.
        last = buf.rfind(b"\x1b", i)
        if last >= 0 and n - last <= HOLD_MAX and _INCOMPLETE.match(buf, last):
            last = _aborted_start(buf, i, last)  # and any aborted ones right before it
            if last > i:
                if strip:
                    out.append(buf[i:last])
                self._close_client_str()
            self._held = buf[last:]
        elif i < n:
            if strip:
                out.append(buf[i:])
            self._close_client_str()
        if not strip:
            return b""
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _wants(self, head: bytes | bytearray) -> bool:
        w = self._strings
        if w is True or not w:
            return bool(w)
        return head[:2] == b"\x1b]" and bytes(head[2:]).startswith(w)

    def _close_client_str(self) -> None:
        if self._client_in_str:
            self._client_in_str = False
            self._fwd = bytearray()

    def _emit_before(self, out: list[bytes], buf: bytes, i: int, s: int, *, dropping: bool) -> None:
        """Forward buf[i:s] (the run before a sequence at s). If that run is empty, the
        sequence at s is dropped and clients are still inside a string that the dropped
        ESC would have ended, forward an ST in its place."""
        # Unfinished ESC or CSI sequences just before a dropped query are aborted by its
        # ESC (no effect); they go with it, or they would join what follows.
        end = _aborted_start(buf, i, s) if dropping else s
        if end > i:
            if self._strip:
                out.append(buf[i:end])
            self._close_client_str()
        elif dropping and self._client_in_str:
            if self._strip:
                out.append(_ST)
            self._close_client_str()


class QueryFilter:
    """Strips terminal queries (and window operations) from a program's output before
    clients see it.

    `feed(data)` returns `data` minus every query, byte-exact otherwise, carrying
    partial sequences across calls (a sequence split at any byte is handled), and
    the same output however the stream is cut into reads. Where removing bytes
    alone would not do, the rewrite is minimal: an OSC 4/5/10-19/21 that both sets
    and asks is forwarded with its settings only; kitty graphics commands other
    than queries get `q=2` (the client's terminal stays silent, the model answers);
    a query whose ESC ended a string the clients are in is replaced by ST; and
    unfinished ESC/CSI bytes that the query's ESC aborted go with the query.
    """

    __slots__ = ("_scan",)

    def __init__(self) -> None:
        self._scan = VTScanner(strip=True)

    def feed(self, data: bytes) -> bytes:
        """Return `data` minus the queries it contains or completes."""
        return self._scan.feed(data)

    def pending(self) -> bytes:
        """The raw bytes of an unfinished non-query sequence that `feed` has already
        returned (clients are in the middle of it), for a client attaching now: send
        it after the snapshot. b"" when no forwarded sequence is open. A sequence
        that may still be a query is held back instead, and is not part of this."""
        return self._scan.pending()

    def held(self) -> bytes:
        """Bytes held back until they are known to be a query or not (for tests)."""
        return self._scan.held()


def find_queries(data: bytes) -> list[bytes]:
    """Every complete query in `data`, in order (a whole stream, for tests and benches)."""
    scan = VTScanner()
    scan.feed(data)
    return [seq for _, kind, seq in scan.events if kind == "q"]


Csi = tuple[bytes, list[int], bytes, bytes]
"""A CSI sequence in parts: (private marker or b"", parameters, intermediates, final byte).
`CSI ? 1 ; 2 $ p` is (b"?", [1, 2], b"$", b"p"); an empty or non-numeric parameter
(`4:3`, `?`) reads as 0. (A plain tuple: one is made for each mode change.)"""


def parse_csi(seq: bytes) -> Csi | None:
    """`seq` in parts if it is exactly one complete CSI sequence, else None."""
    m = _CSI_PARTS.fullmatch(seq)
    if m is None:
        return None
    prefix, raw, inter, final = m.groups()
    return (
        prefix,
        [int(p) if p.isdigit() else 0 for p in raw.split(b";")] if raw else [],
        inter,
        final,
    )


def osc_body(seq: bytes) -> bytes | None:
    """The body of an OSC string as `VTScanner` reports it (between `ESC ]` and its
    terminator, if it has one); None for another string, or an aborted one (CAN, SUB)."""
    if not seq.startswith(b"\x1b]"):
        return None
    body = seq[2:]
    if body.endswith(b"\x07"):
        return body[:-1]
    if body.endswith(b"\x1b\\"):
        return body[:-2]
    if body[-1:] in (b"\x18", b"\x1a"):
        return None
    return body


def osc(body: bytes) -> bytes:
    """The OSC sequence with this body, ST-terminated (`osc_body`'s inverse)."""
    return b"\x1b]" + body + b"\x1b\\"
