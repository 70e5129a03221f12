"""The mode tracker: modes, keyboard flags, shape, region, title and colours from the stream."""

from __future__ import annotations

import attrs
import pytest

from orchestra.core import modes
from orchestra.core.modes import ModeTracker
from orchestra.core.vtscan import VTScanner, osc_body


def track(*chunks: bytes, m: ModeTracker | None = None) -> ModeTracker:
    """Feed chunks through the model's scanner (as the avt engine is) into a tracker."""
    m = m or ModeTracker()
    scan = VTScanner(extra=modes.SEQUENCES, strings=True)
    for chunk in chunks:
        scan.feed(chunk)
        for _, kind, seq in scan.events:
            if kind == "x":
                m.apply(seq)
            elif kind == "s" and (body := osc_body(seq)) is not None:
                m.apply_osc(body)
    return m


def test_defaults() -> None:
    """A fresh tracker has the reset values: autowrap and a visible cursor, nothing else."""
    m = ModeTracker()
    assert m.dec[7] and m.dec[25] and m.dec[1007] and m.dec[1036]
    assert not m.dec[1] and not m.dec[2004] and not m.ansi[4]
    assert not m.alt() and m.kitty_flags() == 0 and m.region is None
    assert m.render() == b""


def test_set_and_reset_private_modes() -> None:
    """DECSET sets and DECRST resets a DEC mode; the last one wins."""
    assert track(b"\x1b[?2004h").dec[2004]
    assert not track(b"\x1b[?2004h\x1b[?2004l").dec[2004]
    assert not track(b"\x1b[?25l").dec[25]


def test_several_modes_in_one_sequence() -> None:
    """Each parameter of one DECSET is a mode; unknown ones are ignored."""
    m = track(b"\x1b[?1;1000;1006;31337h")
    assert m.dec[1] and m.dec[1000] and m.dec[1006]
    assert 31337 not in m.dec
    m = track(b"\x1b[?1;;7l", m=m)  # an empty parameter is 0: no such mode
    assert not m.dec[1] and not m.dec[7] and m.dec[1000]


def test_ansi_modes_are_apart_from_private_ones() -> None:
    """SM/RM (no `?`) set ANSI modes, which do not touch the DEC modes of the same number."""
    m = track(b"\x1b[4;20h")
    assert m.ansi[4] and m.ansi[20]
    m = track(b"\x1b[?4h\x1b[20l", m=m)  # DEC 4 is not tracked
    assert m.ansi[4] and not m.ansi[20] and 4 not in m.dec


def test_keypad_mode() -> None:
    """DECKPAM and DECKPNM set and reset mode 66, as Ghostty keeps it."""
    assert track(b"\x1b=").dec[66]
    assert not track(b"\x1b=\x1b>").dec[66]


def test_sequences_split_anywhere_give_the_same_state() -> None:
    """Cut at every byte, the stream leaves the tracker in the same state as whole."""
    stream = (
        b"\x1b[?1049h\x1b[>5u\x1b[3;20r\x1b[5 q\x1b]2;t\xc3\xa9\x07\x1b[?2004;1004h"
        b"\x1b[>4;2m\x1b]10;#102030\x1b\\\x1b=x\x1b[4h"
    )
    whole = track(stream)
    assert whole.alt() and whole.kitty_flags() == 5 and whole.dec[2004] and whole.dec[66]
    assert whole.title == "té" and whole.fg == (0x10, 0x20, 0x30) and whole.modkeys == 2
    for i in range(1, len(stream)):
        assert track(stream[:i], stream[i:]) == whole, i
    assert track(*(stream[i : i + 1] for i in range(len(stream)))) == whole


def test_kitty_flags_push_pop_and_set() -> None:
    """`CSI > f u` pushes, `CSI < n u` pops n, `CSI = f ; how u` sets, adds or removes."""
    m = track(b"\x1b[>1u\x1b[>3u")
    assert m.kitty_flags() == 3
    assert track(b"\x1b[<u", m=m).kitty_flags() == 1
    assert track(b"\x1b[=4;2u", m=m).kitty_flags() == 5  # add
    assert track(b"\x1b[=1;3u", m=m).kitty_flags() == 4  # remove
    assert track(b"\x1b[=2u", m=m).kitty_flags() == 2  # set
    assert track(b"\x1b[<5u", m=m).kitty_flags() == 0  # popping past the bottom empties it
    assert track(b"\x1b[=6u").kitty_flags() == 6  # set on an empty stack
    deep = track(b"".join(b"\x1b[>%du" % i for i in range(1, 21)))
    assert deep.kitty[0] == list(range(5, 21))  # at most 16 deep


def test_kitty_flags_are_per_screen() -> None:
    """The alternate screen has its own flag stack; leaving it finds the primary's again."""
    m = track(b"\x1b[>1u\x1b[?1049h")
    assert m.alt() and m.kitty_flags() == 0
    m = track(b"\x1b[>8u", m=m)
    assert m.kitty_flags() == 8
    m = track(b"\x1b[?1049l", m=m)
    assert not m.alt() and m.kitty_flags() == 1
    assert track(b"\x1b[?47h").alt() and track(b"\x1b[?1047h").alt()


def test_modify_other_keys() -> None:
    """XTMODKEYS 4 sets modifyOtherKeys; without a value, or reset (`CSI > 4 n`), it is 0;
    other resources are ignored."""
    assert track(b"\x1b[>4;2m").modkeys == 2
    assert track(b"\x1b[>4;2m\x1b[>4m").modkeys == 0
    assert track(b"\x1b[>4;1m\x1b[>4n").modkeys == 0
    assert track(b"\x1b[>1;2m").modkeys == 0


def test_cursor_shape_and_scrolling_region() -> None:
    """DECSCUSR sets the shape (no parameter: the default); DECSTBM the 0-based region
    (none, or the whole screen from row 1, means no region)."""
    assert track(b"\x1b[5 q").shape == 5
    assert track(b"\x1b[5 q\x1b[ q").shape == 0
    assert track(b"\x1b[3;10r").region == (2, 9)
    assert track(b"\x1b[3;10r\x1b[r").region is None
    assert track(b"\x1b[1;24r").region == (0, 23)
    assert track(b"\x1b[5r").region == (4, -1)


def test_soft_reset() -> None:
    """DECSTR resets cursor keys, origin, keypad, autowrap, cursor visibility, insert
    mode and the region, and leaves the other modes."""
    m = track(b"\x1b[?1;6;2004h\x1b[?7;25l\x1b=\x1b[4h\x1b[2;5r\x1b[!p")
    assert not m.dec[1] and not m.dec[6] and not m.dec[66] and m.dec[7] and m.dec[25]
    assert not m.ansi[4] and m.region is None
    assert m.dec[2004]


def test_titles_and_their_stack() -> None:
    """OSC 0 and 2 set the title; XTWINOPS 22 pushes it and 23 pops it back (at most 10)."""
    m = track(b"\x1b]0;one\x07\x1b[22t\x1b]2;two\x1b\\")
    assert m.title == "two"
    assert track(b"\x1b[23t", m=m).title == "one"
    assert track(b"\x1b[23t", m=m).title == "one"  # an empty stack changes nothing
    m = track(b"".join(b"\x1b]2;%d\x07\x1b[22t" % i for i in range(15)))
    assert m.titles == [str(i) for i in range(5, 15)]


def test_colours_the_program_sets_and_resets() -> None:
    """OSC 10/11/12 and 4 set colours (successive ones too; bad specs are skipped), and
    OSC 110/111/112 and 104 reset them."""
    m = track(b"\x1b]10;#ff0000;rgb:0/0/ffff;#00ff00\x07\x1b]4;1;#010203;2;junk;3;#fff\x07")
    assert (m.fg, m.bg, m.cursor_color) == ((255, 0, 0), (0, 0, 255), (0, 255, 0))
    assert m.palette == {1: (1, 2, 3), 3: (255, 255, 255)}
    m = track(b"\x1b]110\x07\x1b]112\x07\x1b]104;1\x07", m=m)
    assert (m.fg, m.bg, m.cursor_color) == (None, (0, 0, 255), None)
    assert m.palette == {3: (255, 255, 255)}
    m = track(b"\x1b]111\x07\x1b]104\x07", m=m)
    assert m.bg is None and m.palette == {}


def test_full_reset_forgets_everything() -> None:
    """RIS puts every field back to its reset value."""
    m = track(b"\x1b[?2004;1049h\x1b[>3u\x1b[5 q\x1b]2;t\x07\x1b]11;#fff\x07\x1b[2;4r\x1b[22t")
    assert track(b"\x1bc", m=m) == ModeTracker()


@pytest.mark.parametrize(
    ("stream", "rendered"),
    [
        (b"\x1b[?2004;1000h", b"\x1b[?1000h\x1b[?2004h"),  # sorted
        (b"\x1b[?1036l", b"\x1b[?1036l"),  # a mode on by default, turned off
        (b"\x1b[?1;2004h", b"\x1b[?2004h"),  # 1 is in `drawn`
        (b"\x1b[>5u", b"\x1b[=5;1u"),
        (b"\x1b[3 q", b"\x1b[3 q"),
        (b"\x1b]11;#000080\x07\x1b]4;9;#fff\x07", b"\x1b]11;rgb:0000/0000/8080\x1b\\"
         b"\x1b]4;9;rgb:ffff/ffff/ffff\x1b\\"),
        (b"\x1b]2;hello\x07", b"\x1b]2;hello\x1b\\"),
    ],
)  # fmt: skip
def test_render_writes_the_state_back(stream: bytes, rendered: bytes) -> None:
    """`render` sets each mode off its default except those drawn elsewhere, the keyboard
    flags, shape, colours and title; replayed, it gives the same state."""
    m = track(stream)
    assert m.render(drawn={1}) == rendered
    assert track(m.render()) == m


def test_reset_puts_every_mode_a_program_sets_back() -> None:
    """After any modes, flags, shape, region and colours, `reset` gives the state `render`
    starts from (all but the screens, the title and the person's own preferences)."""
    kept = {47, 1047, 1048, 1049, 2026, 12, 1007, 1036}
    flipped = sorted(k for k in modes.DEC_DEFAULTS if k not in kept)
    stream = b"".join(b"\x1b[?%d%s" % (k, b"l" if modes.DEC_DEFAULTS[k] else b"h") for k in flipped)
    stream += b"\x1b[4;20h\x1b[>7u\x1b[>4;2m\x1b[5 q\x1b[3;9r\x1b]11;#000080\x07\x1b]4;9;#fff\x07"
    m = track(stream)
    assert m.render() != b""
    m = track(modes.reset(), m=m)
    assert m.kitty_flags() == 0  # set to none, which is the top of the stack left
    assert attrs.evolve(m, kitty=[[], []]) == ModeTracker()
