"""Textual's Linux driver, made to let go of the terminal at once.

`App.suspend()` (Enter: attach) and the app's exit stop the driver's input thread and wait
for it. Textual's thread notices only between two 0.1 s selects on stdin, then sleeps
another 0.1 s on an empty selector: 100 to 200 ms before the attach could start. This
thread also waits on a pipe that `disable_input` writes to, and ends as soon as it is
asked. For an attach, the suspend can also keep the alternate screen (`keep_screen`).
Everything else is Textual's own (the parser, the messages, the terminal modes).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import termios
from codecs import getincrementaldecoder
from typing import Final

from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

TICK: Final = 0.1  # as Textual's: how soon a lone Escape is taken as the Escape key


LEAVE_ALT: Final = "\x1b[?1049l"  # what Textual writes, on its own, to give the screen back


class Driver(LinuxDriver):
    """LinuxDriver whose input thread is woken to stop (see the module's docstring), and
    which can suspend without leaving the alternate screen (`keep_screen`)."""

    _wake: tuple[int, int] | None = None  # the pipe (read, write) of the running thread
    # Set around a suspend whose program draws over the whole screen (an attach): the
    # terminal stays on the alternate screen, so the shell below never shows in between.
    keep_screen = False

    def write(self, data: str) -> None:
        if not (self.keep_screen and data == LEAVE_ALT):
            super().write(data)

    def start_application_mode(self) -> None:
        if self._wake is None:
            self._wake = os.pipe()
        super().start_application_mode()  # type: ignore[no-untyped-call]

    def disable_input(self) -> None:
        """As Textual's, the thread woken instead of waited for."""
        if self.exit_event.is_set():
            return
        signal.signal(signal.SIGWINCH, signal.SIG_DFL)
        self._disable_mouse_support()
        self.exit_event.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"x")
        if self._key_thread is not None:
            self._key_thread.join()
        self.exit_event.clear()
        with contextlib.suppress(termios.error):
            termios.tcflush(self.fileno, termios.TCIFLUSH)

    def close(self) -> None:
        super().close()
        if self._wake is not None and (self._key_thread is None or not self._key_thread.is_alive()):
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    def run_input_thread(self) -> None:
        """Textual's loop: read stdin, parse, post each event; until `exit_event`."""
        assert self._wake is not None
        wake = self._wake[0]
        selector = selectors.DefaultSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        try:
            while not self.exit_event.is_set():
                for key, _ in selector.select(TICK):
                    if key.fd == wake:
                        os.read(wake, 64)
                        continue
                    data = os.read(self.fileno, 4096)
                    if not data:  # stdin closed: nothing more will come
                        return
                    for event in parser.feed(decode(data)):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()
            with contextlib.suppress(Exception):
                for _ in parser.feed(""):
                    pass
