"""Compile numba functions that declare their signatures at their first use instead of at import.

pynndescent (imported by umap) declares the signatures of about a hundred functions, and numba compiles a
function with declared signatures as its module is imported: ~15 s of the ~18 s ``import umap`` takes on a
machine whose numba cache is empty, although maps under 4,096 codes (exact neighbours) never call them.
Inside ``deferred_signatures()`` such a decorator returns a dispatcher that compiles exactly the declared
signatures, and then no others (as numba does), the first time it is called from Python or typed by a
jitted caller; each compile loads from numba's disk cache when the function asked for one.
Best effort: where numba's internals differ, functions compile at import as before.
"""

from __future__ import annotations

import contextlib
import threading

_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def deferred_signatures():
    """While active, ``numba.jit`` / ``numba.njit`` with declared signatures (CPU target) defer compiling."""
    try:
        from numba.core import decorators
        from numba.core.dispatcher import Dispatcher

        original = decorators._jit
    except (ImportError, AttributeError):  # pragma: no cover - numba internals moved
        yield
        return

    def _jit(sigs, locals, target, cache, targetoptions, **dispatcher_args):
        if sigs is None or target != "cpu":
            return original(sigs, locals, target, cache, targetoptions, **dispatcher_args)
        lazy = original(None, locals, target, cache, targetoptions, **dispatcher_args)

        def wrapper(func):
            disp = lazy(func)
            if isinstance(disp, Dispatcher):  # not with NUMBA_DISABLE_JIT (the function itself)
                defer(disp, list(sigs))
            return disp

        return wrapper

    with _PATCH_LOCK:
        decorators._jit = _jit
        try:
            yield
        finally:
            decorators._jit = original


def defer(disp, sigs: list) -> None:
    """Make ``disp`` compile ``sigs`` (and then disable compiling) on its first call or typing."""
    from numba.core import typeinfer
    from numba.core.compiler_lock import global_compiler_lock

    def realise() -> None:
        with global_compiler_lock:  # re-entrant: a caller being compiled may realise its callee
            if "get_call_template" not in vars(disp):
                return  # another thread did
            del disp._compile_for_args, disp.get_call_template
            with typeinfer.register_dispatcher(disp):
                for sig in sigs:
                    disp.compile(sig)
            disp.disable_compile()

    def compile_for_args(*args, **kws):  # numba's call path when no compiled signature matches: returns what
        realise()  # the call then calls (the compiled function), here the dispatcher, which now has them
        return disp

    def get_call_template(args, kws):  # how a jitted caller types a call to it
        realise()
        return disp.get_call_template(args, kws)

    disp._compile_for_args = compile_for_args
    disp.get_call_template = get_call_template
