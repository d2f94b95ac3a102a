"""Calling the function under test safely: a per-call timeout, its stdout/stderr captured,
and ``SystemExit`` (or any other ``BaseException`` but ``KeyboardInterrupt``) turned into a
failure of the check instead of the end of the checker.

Ordinary exceptions pass through unchanged (the bad-input checks expect ``ValueError``);
:func:`user_traceback` trims their traceback to the user's own frames for the report.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import traceback
from typing import Any, Callable

__all__ = ["CallMismatch", "FunctionExited", "FunctionTimeout", "Guarded", "has_user_frames",
           "received", "user_traceback"]

OUTPUT_LIMIT = 64 * 1024  # characters of the function's output kept per check


class FunctionTimeout(Exception):
    """The function under test ran longer than the per-call timeout."""


class FunctionExited(Exception):
    """The function under test raised SystemExit (or another BaseException)."""


class CallMismatch(TypeError):
    """The function under test cannot take the call its binding makes: the user's binding
    (layout, renames, convention) does not match its signature — not a bug in either."""


def _mismatch(fn: Callable, args: tuple, kw: dict, err: TypeError) -> CallMismatch | None:
    """A CallMismatch when ``err`` is Python refusing the call itself (the arguments do not
    bind to ``fn``'s signature), else None."""
    import inspect

    if err.__traceback__ is not None and err.__traceback__.tb_next is not None:
        return None  # raised inside the function
    try:
        sig = inspect.signature(fn)
        sig.bind(*args, **kw)
    except (TypeError, ValueError) as bind_err:
        if isinstance(bind_err, ValueError):
            return None
        given = ", ".join(["<array>"] * len(args) + [f"{k}=" for k in kw])
        return CallMismatch(f"your function {getattr(fn, '__name__', 'fn')}{sig} cannot be "
                            f"called as the checks call it: fn({given}) ({err}); the binding "
                            "(layout, --arg renames, convention) does not match its signature")
    return None


class _Capped(io.StringIO):
    """A text buffer that keeps the first OUTPUT_LIMIT characters and counts the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def write(self, s: str) -> int:
        room = OUTPUT_LIMIT - self.tell()
        if room > 0:
            super().write(s[:room])
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)


class Guarded:
    """``Guarded(fn, timeout)(*args, **kw)`` calls ``fn`` with its output captured and a
    timeout (SIGALRM, on the main thread of a POSIX process; elsewhere no timeout).

    After one call has timed out, every later call fails at once (the function is taken as
    hanging: waiting again in each check would only repeat the timeout)."""

    def __init__(self, fn: Callable, timeout: float | None = None) -> None:
        self.fn = fn
        self.timeout = timeout
        self.output = _Capped()
        self.timed_out = False
        self.last_call: tuple[tuple, dict] | None = None  # copies of the latest arguments
        self.__name__ = getattr(fn, "__name__", "function")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)
        self.__wrapped__ = fn

    def captured(self) -> str:
        text = self.output.getvalue()
        if self.output.dropped:
            text += f"\n... ({self.output.dropped} more characters not kept)"
        return text

    def take_output(self) -> str:
        """What the function printed since the last call of this method (then forgotten)."""
        text = self.captured()
        self.output = _Capped()
        return text

    def _alarm_possible(self) -> bool:
        return (self.timeout is not None and self.timeout > 0 and hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread())

    def __call__(self, *args: Any, **kw: Any) -> Any:
        if self.timed_out:
            raise FunctionTimeout(f"{self.__qualname__} timed out earlier in this run "
                                  f"(after {self.timeout:g} s); not called again")
        self.last_call = (tuple(map(_copy, args)), {k: _copy(v) for k, v in kw.items()})
        alarm = self._alarm_possible()
        previous = None
        if alarm:
            def on_alarm(signum, frame):
                raise FunctionTimeout(f"{self.__qualname__} did not return within "
                                      f"{self.timeout:g} s (--timeout)")

            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            with contextlib.redirect_stdout(self.output), contextlib.redirect_stderr(
                    self.output):
                return self.fn(*args, **kw)
        except FunctionTimeout:
            self.timed_out = True
            raise
        except TypeError as err:
            mismatch = _mismatch(self.fn, args, kw, err)
            if mismatch is not None:
                raise mismatch from None
            raise
        except (KeyboardInterrupt, Exception):
            raise
        except BaseException as err:  # SystemExit, GeneratorExit, ...
            raise FunctionExited(f"{self.__qualname__} raised {type(err).__name__}"
                                 f"({', '.join(map(repr, getattr(err, 'args', ())))}): "
                                 "a checked function must return, not exit") from err
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)


def _copy(x: Any) -> Any:
    """A snapshot of an argument (the function may modify it in place)."""
    if hasattr(x, "detach") and hasattr(x, "clone"):
        return x.detach().clone()
    if hasattr(x, "copy") and hasattr(x, "dtype"):
        return x.copy()
    return x


def received(fn: Callable, call: tuple[tuple, dict] | None) -> str:
    """``name = value`` lines for the arguments of ``call`` as ``fn`` names them."""
    import inspect

    if call is None:
        return ""
    args, kw = call
    try:
        named = dict(inspect.signature(fn).bind_partial(*args, **kw).arguments)
    except (TypeError, ValueError):
        named = dict({f"arg{i}": a for i, a in enumerate(args)}, **kw)
    from .compare import literal

    return "\n".join(f"{k} = {literal(v)}" for k, v in named.items())


_GUARD = os.path.abspath(__file__)
_MUTANTS = os.path.join(os.path.dirname(_GUARD), "mutants.py")  # functions under test too


_REFMATH = os.path.dirname(os.path.dirname(_GUARD)) + os.sep  # the refmath package


def _internal(filename: str) -> bool:
    name = os.path.abspath(filename)
    if name == _MUTANTS:
        return False
    return name.startswith(_REFMATH) or f"{os.sep}hypothesis{os.sep}" in name or \
        f"{os.sep}_pytest{os.sep}" in name or f"{os.sep}pluggy{os.sep}" in name


def _user_frames(tb) -> list:
    """The frames of the function under test: those after the guard's call, else every frame
    outside refmath, Hypothesis and pytest."""
    frames = traceback.extract_tb(tb)
    calls = [i for i, f in enumerate(frames)
             if os.path.abspath(f.filename) == _GUARD and f.name == "__call__"]
    if calls:
        return frames[calls[-1] + 1:]
    return [f for f in frames if not _internal(f.filename)]


def has_user_frames(err: BaseException) -> bool:
    """Whether the traceback of ``err`` passes through the function under test (or a library
    it calls), not only through refmath's, Hypothesis' or pytest's own code."""
    return bool(_user_frames(err.__traceback__))


def user_traceback(err: BaseException, limit: int = 12) -> str:
    """The traceback of ``err`` trimmed to the function under test's frames."""
    source = err.__cause__ if isinstance(err, FunctionExited) and err.__cause__ else err
    frames = _user_frames(source.__traceback__)
    lines = traceback.format_list(frames[-limit:])
    head = "Traceback (your code, most recent call last):\n" if frames else ""
    return head + "".join(lines) + f"{type(err).__name__}: {err}"
